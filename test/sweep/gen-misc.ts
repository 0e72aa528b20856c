/**
 * dd (block sizes, counts, skips, output formats), bench (exit status and
 * errors only: its numbers are timings) and the global command line
 * (help, version, unknown commands and options). Not `bench -d 0`:
 * qemu-img 7.2 hangs on it.
 */
import { ALL, img, makeCase, sample, seeded, without, type Rand } from './case-kit.js';
import { fixture, type Fixture } from './fixtures.js';
import { VDISK_FORMATS, ext } from './options.js';
import type { Case } from './types.js';

const ORDINARY = without(ALL, 'big', 'secret', 'unsupported');

function ddCase(f: Fixture, args: string[], target = 'raw'): Case {
  const out = `out.${ext(target)}`;
  const argv = ['dd', '-f', f.format, ...(target === 'raw' ? [] : ['-O', target]), ...args, `if=${f.name}`, `of=${out}`];
  return makeCase('dd', [f.name], [img(...argv)], { hints: { [out]: target } });
}

function ddCases(r: Rand): Case[] {
  const out: Case[] = [];
  const variants = [
    [], ['bs=4k'], ['bs=1M'], ['bs=512', 'count=10'], ['bs=64k', 'count=3', 'skip=2'], ['bs=3', 'count=1000'], ['bs=0'], ['count=0'], ['skip=1'],
    ['bs=1M', 'skip=5000'], ['bs=1000000', 'count=1'], ['count=-1'], ['bs=abc'], ['bs=1k', 'count=1', 'skip=1'], ['conv=notrunc'], ['seek=1'],
  ];
  // not big inputs: dd writes every byte it copies, zeros included
  for (const v of variants) for (const f of sample(r, without(ALL, 'big'), 4)) out.push(ddCase(f, v));
  for (const t of [...VDISK_FORMATS, 'qed']) for (const f of sample(r, ORDINARY, 3)) out.push(ddCase(f, ['bs=64k'], t));
  out.push(makeCase('dd', ['r-data.raw'], [img('dd', 'if=r-data.raw')]), makeCase('dd', ['r-data.raw'], [img('dd', 'of=out.raw')]));
  out.push(makeCase('dd', ['r-data.raw'], [img('dd', 'if=r-data.raw', 'of=r-data.raw')]));
  out.push(makeCase('dd', ['q-v3.qcow2'], [img('dd', '--image-opts', 'if=driver=qcow2,file.filename=q-v3.qcow2', 'of=out.raw')]));
  return out;
}

function benchCases(): Case[] {
  const out: Case[] = [];
  const variants = [
    ['-c', '10'], ['-c', '10', '-w'], ['-c', '10', '-d', '1'], ['-c', '10', '-s', '512'], ['-c', '10', '-s', '1M'], ['-c', '10', '-o', '1M'],
    ['-c', '10', '-S', '8k'], ['-c', '10', '-w', '--pattern=5'], ['-c', '10', '-t', 'none'], ['-c', '10', '-i', 'threads'], ['-c', '10', '-i', 'bogus'],
    ['-c', '10', '-n'], ['-c', '10', '--no-drain'], ['-c', '10', '-w', '--flush-interval=2'], ['-c', '0'], ['-c', '-1'], ['-c', 'x'],
    ['-s', '0', '-c', '1'], ['-o', '5M', '-c', '1'], ['-c', '10', '-q'], ['-c', '10', '-U'], ['-c', '10', '-w', '-U'], ['--flush-interval=2', '-c', '10'],
    ['-c', '10', '--pattern=300', '-w'],
  ];
  for (const name of ['r-data.raw', 'q-v3.qcow2', 'v-sparse.vmdk', 'q-c512.qcow2']) {
    const f = fixture(name);
    for (const v of variants) out.push(makeCase('bench', [name], [img('bench', ...v, '-f', f.format, name)], { exitOnly: true }));
  }
  return out;
}

function globalCases(): Case[] {
  const g = (...argv: string[]): Case => makeCase('global', [], [img(...argv)]);
  const commands = ['amend', 'bench', 'bitmap', 'check', 'commit', 'compare', 'convert', 'create', 'dd', 'info', 'map', 'measure', 'snapshot', 'rebase', 'resize'];
  return [
    g(), g('--help'), g('-h'), g('-V'), g('--version'), g('bogus'), g('--bogus'), g('-T', 'bogus', 'info', 'x'),
    ...commands.flatMap((c) => [g(c), g(c, '--help'), g(c, '--bogus-option')]),
  ];
}

/** Every dd, bench and global case. */
export function miscCases(): Case[] {
  return [...ddCases(seeded(501)), ...benchCases(), ...globalCases()];
}
