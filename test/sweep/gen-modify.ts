/**
 * The commands that change an image in place: resize, amend, snapshot and
 * bitmap, on every writable fixture (qcow2 variants above all) and on the
 * formats that refuse them.
 */
import { ALL, img, makeCase, ofFormat, sample, seeded, tagged, without, type Rand } from './case-kit.js';
import { fixture, type Fixture } from './fixtures.js';
import type { Case } from './types.js';

const one = (command: string, f: Fixture, argv: string[]): Case => makeCase(command, [f.name], [img(command, ...argv)]);
const WRITABLE = tagged('writable');
const QCOW2 = without(ofFormat('qcow2'), 'secret');

function resizeCases(r: Rand): Case[] {
  const out: Case[] = [];
  const core = [['+1M'], ['--shrink', '-1M'], ['-1M'], ['8M'], ['4M'], ['--shrink', '1M'], ['4100000'], ['+511']];
  const more = [
    ['1T'], ['--shrink', '0'], ['0'], ['+0'], ['-0'], ['abc'], ['--shrink', '-8M'], ['+1P'], ['9223372036854775807'], ['-q', '+1M'],
    ['--preallocation=off', '+1M'], ['--preallocation=metadata', '+1M'], ['--preallocation=falloc', '+1M'], ['--preallocation=full', '+1M'],
    ['--preallocation=bogus', '+1M'], ['--preallocation=full', '--shrink', '-1M'], ['--preallocation=full', '+1000001'],
  ];
  for (const f of [...WRITABLE, ...tagged('unsupported')]) {
    if (f.tags.includes('secret')) continue;
    for (const a of core) out.push(one('resize', f, [...a.slice(0, -1), f.name, a.at(-1)!]));
    out.push(one('resize', f, ['-f', f.format, f.name, '+64k']));
  }
  // not data-file images: a data_file_raw image grown to 1 TiB maps it all, and compare reads it all
  const resizable = without(WRITABLE, 'datafile');
  for (const a of more) for (const f of sample(r, resizable, 5)) out.push(one('resize', f, [...a.slice(0, -1), '-f', f.format, f.name, a.at(-1)!]));
  for (const f of QCOW2) for (const p of ['metadata', 'full']) out.push(one('resize', f, [`--preallocation=${p}`, f.name, '+1M']));
  out.push(makeCase('resize', [], [img('resize', 'nosuch.raw', '+1M')]), makeCase('resize', ['r-data.raw'], [img('resize', 'r-data.raw')]));
  return out;
}

const AMEND = [
  'compat=0.10', 'compat=1.1', 'compat=v2', 'lazy_refcounts=on', 'lazy_refcounts=off', 'refcount_bits=1', 'refcount_bits=2', 'refcount_bits=8',
  'refcount_bits=32', 'refcount_bits=64', 'refcount_bits=3', 'size=8M', 'size=2M', 'size=1000001', 'size=1T', 'backing_file=r-data.raw,backing_fmt=raw',
  'backing_fmt=raw', 'data_file=x.data', 'data_file_raw=on', 'cluster_size=4k', 'extended_l2=on', 'compression_type=zstd',
  'preallocation=metadata', 'encrypt.format=luks', 'bogus=1', 'help', 'compat=0.10,refcount_bits=16', 'compat=1.1,lazy_refcounts=on',
];

/** Images whose refcount width qemu-img 7.2 takes minutes to change (2 MiB clusters, 1-bit refcounts). */
export const SLOW_REFCOUNT_CHANGE: ReadonlySet<string> = new Set(['q-c2m.qcow2', 'q-rc1.qcow2']);

/** Fixtures an amend option may go to: not 1 TiB onto data files (mapped in full), no new refcount width where qemu takes minutes. */
export function amendable(option: string, list: readonly Fixture[]): Fixture[] {
  if (option.includes('size=1T')) return without(list, 'datafile');
  if (option.includes('refcount_bits')) return list.filter((f) => !SLOW_REFCOUNT_CHANGE.has(f.name));
  return [...list];
}

function amendCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const o of AMEND) {
    for (const f of sample(r, amendable(o, QCOW2), 6)) {
      const inputs = o.includes('r-data.raw') ? [f.name, 'r-data.raw'] : [f.name];
      out.push(makeCase('amend', inputs, [img('amend', '-f', 'qcow2', '-o', o, f.name)]));
    }
  }
  for (const f of QCOW2) out.push(one('amend', f, ['-o', 'compat=0.10', f.name]));
  for (const f of amendable('refcount_bits', QCOW2)) out.push(one('amend', f, ['-o', 'refcount_bits=64', f.name]));
  for (const flags of [['-p'], ['-q'], ['-t', 'none'], ['-t', 'bogus'], ['--force'], ['--image-opts']]) {
    const f = fixture('q-v3.qcow2');
    const target = flags[0] === '--image-opts' ? ['driver=qcow2,file.filename=q-v3.qcow2'] : [f.name];
    out.push(makeCase('amend', [f.name], [img('amend', ...flags, '-o', 'lazy_refcounts=on', ...target)]));
  }
  for (const f of without(ALL, 'secret').filter((x) => x.format !== 'qcow2')) out.push(one('amend', f, ['-o', 'size=8M', f.name]));
  out.push(one('amend', fixture('q-v3.qcow2'), ['q-v3.qcow2']), one('amend', fixture('q-v3.qcow2'), ['-o', '', 'q-v3.qcow2']));
  return out;
}

function snapshotCases(): Case[] {
  const out: Case[] = [];
  const actions = [
    ['-l'], ['-c', 's9'], ['-a', 's1'], ['-a', '1'], ['-d', 's1'], ['-d', '2'], ['-a', 'nosuch'], ['-d', 'nosuch'], ['-c', 's1'],
    ['-c', ''], ['-U', '-l'], ['-U', '-c', 'x'], ['-q', '-c', 'x'], [], ['-l', '-c', 'x'], ['-f', 'qcow2', '-l'], ['-c', 'a'.repeat(300)],
  ];
  for (const f of QCOW2) for (const a of actions) out.push(one('snapshot', f, [...a, f.name]));
  for (const f of without(ALL, 'secret').filter((x) => x.format !== 'qcow2')) for (const a of [['-c', 's1'], ['-l']]) out.push(one('snapshot', f, [...a, f.name]));
  return out;
}

function bitmapCases(): Case[] {
  const out: Case[] = [];
  const actions = [
    ['--add', 'n'], ['--add', '-g', '512', 'n'], ['--add', '-g', '64k', 'n'], ['--add', '-g', '2M', 'n'], ['--add', '-g', '1k', 'n'],
    ['--add', '-g', '513', 'n'], ['--add', '-g', '4G', 'n'], ['--add', '-g', '0', 'n'], ['--add', '--disable', 'n'], ['--remove', 'bm-on'],
    ['--remove', 'nosuch'], ['--clear', 'bm-on'], ['--enable', 'bm-off'], ['--disable', 'bm-on'], ['--merge', 'bm-off', 'bm-on'],
    ['--add', 'bm-on'], ['n'], ['--add', ''], ['--add', 'x'.repeat(1024)], ['--add', '--clear', 'n'], ['--add', '--remove', 'n'],
    ['-f', 'qcow2', '--add', 'n'], ['-g', '64k', '--clear', 'bm-on'], ['--merge', 'bm-on', '-b', 'q-bm.qcow2', '-F', 'qcow2', 'n2'],
    ['--merge', 'nosuch', 'bm-on'], ['--add', '-g', '64k', '--merge', 'bm-on', 'n'],
  ];
  const targets = ['q-bm.qcow2', 'q-v3.qcow2', 'q-v2.qcow2', 'q-c512.qcow2', 'q-snap.qcow2', 'q-c2m.qcow2'].map(fixture);
  for (const f of targets) {
    for (const a of actions) {
      const argv = a.length === 1 ? ['bitmap', f.name, a[0]!] : ['bitmap', ...a.slice(0, -1), f.name, a.at(-1)!];
      out.push(makeCase('bitmap', [f.name], [img(...argv)]));
    }
  }
  for (const f of without(ALL, 'secret').filter((x) => x.format !== 'qcow2')) out.push(one('bitmap', f, ['--add', f.name, 'n']));
  out.push(makeCase('bitmap', ['q-bm.qcow2', 'q-v3.qcow2'], [img('bitmap', '--merge', 'bm-on', '-b', 'q-bm.qcow2', '-F', 'qcow2', 'q-v3.qcow2', 'bm-on')]));
  return out;
}

/** Every resize, amend, snapshot and bitmap case. */
export function modifyCases(): Case[] {
  const r = seeded(401);
  return [...resizeCases(r), ...amendCases(r), ...snapshotCases(), ...bitmapCases()];
}
