/**
 * Reading QED images qemu-img and qemu-io write: every create
 * option, edge sizes, backing files (probed and raw), zero clusters and
 * partial writes read back byte-identical through vdisk, and `info` (JSON
 * and human), `map` (JSON and human) and `check` print what qemu-img
 * prints. Broken headers fail to open with qemu's messages, and a table
 * entry qemu refuses fails map the way qemu-img's does.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qed-read-');
after(() => dir.cleanup());
const cwd = dir.path;

/** Runs the same command through both tools and compares stdout, stderr and exit status. */
export function same(args: readonly string[], where = cwd): void {
  const ours = vdisk(args, { cwd: where });
  const theirs = qemuImg(args, { cwd: where });
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${args.join(' ')}`);
  assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), `stderr of ${args.join(' ')}`);
  assert.equal(ours.status, theirs.status, `exit status of ${args.join(' ')}`);
}

const WRITES = ['write -P 0x11 0 64k', 'write -P 0x22 100k 70k', 'write -z 1M 128k', 'write -P 0x33 3M 1k', 'write -P 0x44 5000k 3000k'];

/** name, create options, size, qemu-io commands. */
const IMAGES: readonly (readonly [string, readonly string[], string, readonly string[]])[] = [
  ['default.qed', [], '8M', WRITES],
  ['small.qed', ['-o', 'cluster_size=4k,table_size=2'], '8M', WRITES],
  ['big-cluster.qed', ['-o', 'cluster_size=1M,table_size=16'], '8M', WRITES],
  ['tables.qed', ['-o', 'cluster_size=4k,table_size=16'], '24M', ['write -P 0x55 20M 2M', 'write -z 4M 4k']],
  ['odd-size.qed', [], '1000', []],
  ['empty.qed', [], '0', []],
  ['over-qcow2.qed', ['-b', 'base.qcow2', '-F', 'qcow2'], '8M', WRITES],
  ['over-raw.qed', ['-b', 'base.raw', '-F', 'raw'], '8M', WRITES],
  ['over-short.qed', ['-b', 'short.qcow2', '-F', 'qcow2'], '8M', ['write -P 0x66 1500k 4k']],
];

function rawOf(tool: typeof vdisk | typeof qemuImg, name: string, out: string): Buffer {
  const r = tool(['convert', '-O', 'raw', name, out], { cwd });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(`${cwd}/${out}`);
}

describe('qed images qemu-img writes read as qemu-img reads them', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'base.qcow2', '8M'], { cwd });
    qemuIo(`${cwd}/base.qcow2`, ['write -P 0xb1 0 8M'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'raw', 'base.raw', '8M'], { cwd });
    qemuIo(`${cwd}/base.raw`, ['write -P 0xb2 0 8M'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'short.qcow2', '1M'], { cwd });
    qemuIo(`${cwd}/short.qcow2`, ['write -P 0xb3 0 1M'], 'qcow2');
    for (const [name, opts, size, writes] of IMAGES) {
      qemuImgOk(['create', '-q', '-f', 'qed', ...opts, name, size], { cwd });
      if (writes.length) qemuIo(`${cwd}/${name}`, writes, 'qed');
    }
  });

  for (const [name] of IMAGES) {
    it(`${name}: bytes, info, map and check`, (t) => {
      if (!requireQemu(t)) return;
      assert.ok(rawOf(vdisk, name, `${name}.v.raw`).equals(rawOf(qemuImg, name, `${name}.q.raw`)), 'guest bytes');
      same(['info', '--output=json', name]);
      same(['map', '--output=json', name]);
      same(['check', name]);
    });
  }

  it('human info and map, the backing chain, check --output=json', (t) => {
    if (!requireQemu(t)) return;
    for (const name of ['default.qed', 'over-raw.qed']) {
      same(['info', name]);
      same(['map', name]);
    }
    same(['info', '--backing-chain', '--output=json', 'over-qcow2.qed']);
    same(['check', '--output=json', 'small.qed']);
  });
});

/** Sets a little-endian field of a copy of `src`. */
function patched(src: string, name: string, edits: readonly (readonly [number, number | bigint, 4 | 8])[]): string {
  const b = readFileSync(`${cwd}/${src}`);
  for (const [at, value, width] of edits) {
    if (width === 4) b.writeUInt32LE(Number(value), at);
    else b.writeBigUInt64LE(BigInt(value), at);
  }
  writeFileSync(`${cwd}/${name}`, b);
  return name;
}

describe('qed headers and tables qemu refuses', () => {
  const cases: readonly (readonly [string, readonly (readonly [number, number | bigint, 4 | 8])[]])[] = [
    ['unknown feature', [[16, 8n, 8]]],
    ['cluster size not a power of two', [[4, 5000, 4]]],
    ['cluster size too small', [[4, 2048, 4]]],
    ['table size 3', [[8, 3, 4]]],
    ['table size 32', [[8, 32, 4]]],
    ['image size not a sector multiple', [[48, 1000n, 8]]],
    ['image size past the geometry', [[48, 0xffffffffffff0000n, 8]]],
    ['L1 offset zero', [[40, 0n, 8]]],
    ['L1 offset unaligned', [[40, 0x10001n, 8]]],
    ['L1 offset past the file', [[40, 0x1000000n, 8]]],
    ['header size over the L1 table', [[12, 2, 4]]],
    ['backing name past the header', [[16, 1n, 8], [56, 64, 4], [60, 70000, 4]]],
    ['empty backing name', [[16, 1n, 8], [56, 64, 4], [60, 0, 4]]],
    ['compatible and autoclear bits', [[24, 0x10n, 8], [32, 0x10n, 8]]],
  ];
  for (const [what, edits] of cases) {
    it(`${what}: info as qemu-img`, (t) => {
      if (!requireQemu(t)) return;
      const name = patched('default.qed', `bad-${what.replaceAll(' ', '-')}.qed`, edits);
      same(['info', '-f', 'qed', name]);
    });
  }

  it('an image made with table_size=1 does not open, as in qemu-img', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qed', '-o', 'table_size=1', 'one-table.qed', '1M'], { cwd });
    same(['info', 'one-table.qed']);
    same(['map', 'one-table.qed']);
  });

  for (const [what, entry] of [['first', 0], ['sixteenth', 15]] as const) {
    it(`a ${what} L2 entry that is not a cluster offset fails map and convert as in qemu-img`, (t) => {
      if (!requireQemu(t)) return;
      // default.qed: L1 at 64 KiB; its first L2 table is where the L1 entry points
      const l2 = Number(readFileSync(`${cwd}/default.qed`).readBigUInt64LE(65536));
      const name = patched('default.qed', `bad-l2-${what}.qed`, [[l2 + entry * 8, 0x60001n, 8]]);
      same(['map', name]);
      same(['map', '--output=json', name]);
      same(['convert', '-O', 'raw', name, `${name}.raw`]);
      same(['check', name]);
    });
  }
});
