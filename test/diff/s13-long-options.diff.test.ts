/**
 * Abbreviated long options and `-h`/`--help` among a command's options, as
 * qemu-img's getopt_long takes them. vdisk adds long spellings of its own
 * (`--max-chain-depth`, `--header`, `--format` on convert, ...), which made
 * abbreviations qemu-img takes ambiguous (`map --max` for `--max-length`,
 * `measure --s` for `--size`) or turned them into vdisk options (`info --he=x`
 * into `--header`); `-h` or `--help` with other arguments was "unrecognized"
 * where qemu-img prints its help and exits 0. measure's getopt reports
 * ambiguity and arguments in glibc's words, with the full option name.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-long-options-');
after(() => dir.cleanup());
const cwd = dir.path;

/** qemu-img 7.2's long options of each command (measure's are tested by their messages below: it prints help on errors). */
const QEMU_LONGS: Readonly<Record<string, readonly string[]>> = {
  amend: ['object', 'image-opts', 'force'],
  bench: ['flush-interval', 'image-opts', 'pattern', 'no-drain', 'force-share'],
  bitmap: ['object', 'image-opts', 'add', 'remove', 'clear', 'enable', 'disable', 'merge', 'granularity', 'source-file', 'source-format'],
  check: ['format', 'object', 'image-opts', 'repair', 'output', 'force-share'],
  commit: ['object', 'image-opts'],
  compare: ['object', 'image-opts', 'force-share'],
  convert: ['object', 'image-opts', 'target-image-opts', 'salvage', 'target-is-zero', 'bitmaps', 'skip-broken-bitmaps', 'force-share'],
  create: ['object'],
  dd: ['object', 'image-opts', 'force-share'],
  info: ['format', 'output', 'backing-chain', 'object', 'image-opts', 'force-share'],
  map: ['format', 'output', 'object', 'image-opts', 'force-share', 'start-offset', 'max-length'],
  rebase: ['object', 'image-opts', 'force-share'],
  resize: ['object', 'image-opts', 'preallocation', 'shrink'],
  snapshot: ['object', 'image-opts', 'force-share'],
};

/** The two-letter prefixes (and `--h`, `--he`: help's) of each command's long options, with a value: each fails before any file is touched. */
function abbreviations(): string[][] {
  const out: string[][] = [];
  for (const [command, longs] of Object.entries(QEMU_LONGS)) {
    const prefixes = new Set(['h', 'he']);
    for (const l of longs) for (const n of [2]) if (n < l.length) prefixes.add(l.slice(0, n));
    for (const p of prefixes) out.push([command, `--${p}=x`, 'q.qcow2']);
  }
  return out;
}

const CASES: readonly (readonly string[])[] = [
  ['map', '--max', '4096', '--out', 'json', 'q.qcow2'],
  ['map', '--st', '65536', '--output=json', 'q.qcow2'],
  ['info', '--out=json', 'q.qcow2'],
  ['info', '--back', 'q.qcow2'],
  ['check', '--rep', 'all', 'q.qcow2'],
  ['convert', '--target-is', '-n', '-O', 'raw', 'q.qcow2', 'r.raw'],
  ['convert', '--sa', '-O', 'raw', 'q.qcow2', 'OUT'],
  ['bitmap', '--a', 'q.qcow2', 'b'],
  ['bitmap', '--me', 'x', 'q.qcow2', 'b'],
  ['resize', '--shr', 'q.qcow2', '512k'],
  ['resize', '--pre=full', 'q.qcow2', '2M'],
  ['measure', '--si', '1M', '-O', 'qcow2'],
  ['measure', '--s', '1M', '-O', 'qcow2'],
];

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
  qemuImg(['info', 'OUT'], { cwd });
}

describe('long options as qemu-img abbreviates them', () => {
  it('every prefix qemu-img takes means what it means there', (t) => {
    if (!requireQemu(t)) return;
    fresh();
    assertCasesMatchQemu(abbreviations(), { cwd, fresh: () => undefined });
    assertCasesMatchQemu(CASES, { cwd, fresh, outcome: () => qemuImgOk(['info', '-U', 'q.qcow2'], { cwd }) });
  });

  it('measure reports bad long options in glibc words, then prints the help', (t) => {
    if (!requireQemu(t)) return;
    fresh();
    for (const word of ['--o=x', '--f=x', '--image-opt=x', '--hel=x', '--h=x', '--ou=x', '--si', '--i=x', '--size=1M=2']) {
      const theirs = qemuImg(['measure', word], { cwd });
      const ours = vdisk(['measure', word], { cwd });
      assert.equal(ours.stderr.split('\n')[0], asVdisk(theirs.stderr).split('\n')[0], word);
      assert.equal(ours.status, theirs.status, word);
    }
  });

  it('-h or --help among other arguments prints the help and exits 0', (t) => {
    if (!requireQemu(t)) return;
    fresh();
    const help = vdisk(['--help'], { cwd }).stdout;
    assert.match(help, /^usage: vdisk /m);
    const lines = [
      ['info', '--help', 'q.qcow2'], ['info', '-h', 'q.qcow2'], ['info', 'q.qcow2', '--help'], ['info', '--hel', 'q.qcow2'],
      ['convert', '-h', '-O', 'raw', 'q.qcow2', 'OUT'], ['measure', '--he', '-O', 'qcow2', 'q.qcow2'], ['dd', '-h'],
      ['bitmap', '-h'], ['resize', '-h', 'q.qcow2', '1M'], ['amend', '-h'], ['bench', '-h'], ['info', '-Uh', 'q.qcow2'],
    ];
    for (const args of lines) {
      assert.equal(qemuImg(args, { cwd }).status, 0, `qemu-img ${args.join(' ')}`);
      const ours = vdisk(args, { cwd });
      assert.equal(ours.status, 0, args.join(' '));
      assert.equal(ours.stdout, help, args.join(' '));
    }
    // An option before it that fails still fails first; one that takes -h as its value is not help.
    for (const args of [['convert', '-S', '3', '-h', 'q.qcow2', 'OUT'], ['info', '--help=x', 'q.qcow2'], ['info', '-f', '-h', 'q.qcow2'], ['info', '-fh', 'q.qcow2']]) {
      const theirs = qemuImg(args, { cwd });
      const ours = vdisk(args, { cwd });
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status, args.join(' '));
    }
  });
});
