/**
 * convert's native copy requests (io/copy-scan.ts: read, zero scan and, for
 * raw targets, the write in one request) against the JavaScript path
 * (VDISK_NO_NATIVE=1) and qemu-img: the same target byte for byte, the
 * same content and allocation as qemu-img's, over raw and qcow2 sources
 * and chains, odd cluster sizes, unaligned tails, holes and short zero
 * runs, -S, -n targets, preallocation, -B and concatenated sources.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { allocatedClusters, assertSameContent, mapOf } from '../helpers/copysem.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { canCopyScan } from '../../src/io/copy-scan.js';

const dir = tmpDir('vdisk-copy-native-');
after(() => dir.cleanup());
const cwd = dir.path;
const KiB = 1024;
const MiB = 1024 * KiB;


function fixtures(): void {
  // Data with zero gaps shorter and longer than -S, written zeros, lone bytes, and an unaligned tail.
  const pieces: [number, number, number][] = [
    [0, 3000, 1], [3 * KiB + 512, 1 * KiB, 2], [8 * KiB, 60 * KiB, 3], [72 * KiB, 4 * KiB, 4], [80 * KiB + 100, 1, 5],
    [1 * MiB, 1 * MiB, 0], [2 * MiB + 4 * KiB, 1536 * KiB, 6], [3 * MiB + 777, 5000, 7], [5 * MiB - 10, 10 + 1234, 8],
  ];
  writeFileSync(join(cwd, 'mix.raw'), (() => {
    const buf = Buffer.alloc(5 * MiB + 1234);
    for (const [at, n, byte] of pieces) buf.fill(byte, at, at + n);
    return buf;
  })());
  // Holes where nothing was written (qemu-img's -S 4k scan keeps them sparse).
  qemuImgOk(['convert', '-f', 'raw', '-O', 'raw', 'mix.raw', 'src.raw'], { cwd });
  // A written 1 MiB of zeros must stay allocated in the source (the scan, not block status, finds it).
  qemuIo(join(cwd, 'src.raw'), ['write -P 0 1M 1M'], 'raw');
  qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', 'src.raw', 'src.qcow2'], { cwd });
  // A chain: qcow2 base, overlays with data, zero clusters and discards over it.
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'src.qcow2', '-F', 'qcow2', 'mid.qcow2'], { cwd });
  qemuIo(join(cwd, 'mid.qcow2'), ['write -P 11 64k 64k', 'write -z 2M 128k', 'write -P 0 3M 64k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
  qemuIo(join(cwd, 'top.qcow2'), ['write -P 12 4k 8k', 'discard 2M 64k', 'write -P 13 4M 4k'], 'qcow2');
  // A second source for concatenation, of a length that leaves the next one unaligned.
  writeFileSync(join(cwd, 'odd.raw'), Buffer.alloc(100_001, 9));
}

interface Case {
  readonly name: string;
  /** convert's arguments before the target; OUT is appended. */
  readonly args: readonly string[];
  readonly format: 'raw' | 'qcow2';
  /** The source to compare the target with (format, file); undefined skips the comparison (concatenation). */
  readonly source?: readonly [string, string];
  /** An existing target for -n (created in the target format at this size, then filled with 0xee bytes). */
  readonly existing?: number;
}

const CASES: readonly Case[] = [
  { name: 'raw → raw', args: ['-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw -S 0', args: ['-S', '0', '-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw -S 1536', args: ['-S', '1536', '-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw -S 64k', args: ['-S', '64k', '-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw -W -m 16', args: ['-W', '-m', '16', '-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw preallocation=falloc', args: ['-f', 'raw', '-O', 'raw', '-o', 'preallocation=falloc', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'] },
  { name: 'raw → raw -n over old bytes', args: ['-n', '-f', 'raw', '-O', 'raw', 'src.raw'], format: 'raw', source: ['raw', 'src.raw'], existing: 5 * MiB + 1536 },
  { name: 'qcow2 → raw', args: ['-f', 'qcow2', '-O', 'raw', 'src.qcow2'], format: 'raw', source: ['qcow2', 'src.qcow2'] },
  { name: 'chain → raw', args: ['-O', 'raw', 'top.qcow2'], format: 'raw', source: ['qcow2', 'top.qcow2'] },
  { name: 'raw + odd → raw (unaligned second source)', args: ['-f', 'raw', '-O', 'raw', 'odd.raw', 'src.raw'], format: 'raw' },
  { name: 'raw → qcow2', args: ['-f', 'raw', '-O', 'qcow2', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 cluster_size=512', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=512', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 cluster_size=2M', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=2M', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 extended_l2', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 refcount_bits=1', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'refcount_bits=1', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 refcount_bits=64,cluster_size=4k', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'refcount_bits=64,cluster_size=4k', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 -S 0', args: ['-S', '0', '-f', 'raw', '-O', 'qcow2', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'raw → qcow2 preallocation=metadata', args: ['-f', 'raw', '-O', 'qcow2', '-o', 'preallocation=metadata', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'] },
  { name: 'chain → qcow2', args: ['-O', 'qcow2', 'top.qcow2'], format: 'qcow2', source: ['qcow2', 'top.qcow2'] },
  { name: 'chain → qcow2 -B mid', args: ['-O', 'qcow2', '-B', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'], format: 'qcow2', source: ['qcow2', 'top.qcow2'] },
  { name: 'raw → qcow2 -n', args: ['-n', '-f', 'raw', '-O', 'qcow2', 'src.raw'], format: 'qcow2', source: ['raw', 'src.raw'], existing: 5 * MiB + 1536 },
];

/**
 * `qemu-img map` without host offsets, where a qcow2 data cluster counts as
 * data whether or not the host file has a hole under part of it: vdisk
 * leaves the unwritten part of a fresh cluster a hole where qemu writes or
 * fallocates it, on either path (not this test's subject).
 */
function guestMap(file: string, format: string): unknown[] {
  const out: { start: number; length: number; depth: number; present: boolean; zero: boolean; data: boolean }[] = [];
  for (const e of mapOf(file, format, cwd)) {
    const entry = format === 'qcow2' && e.data ? { ...e, zero: false } : { ...e };
    const last = out.at(-1);
    if (last && last.depth === entry.depth && last.present === entry.present && last.zero === entry.zero && last.data === entry.data) last.length += entry.length;
    else out.push(entry);
  }
  return out;
}

/** Runs the case's convert with `tool` into `out` (creating the -n target first). */
function run(c: Case, out: string, tool: 'qemu' | 'native' | 'js'): void {
  if (c.existing) {
    qemuImgOk(['create', '-q', '-f', c.format, out, String(c.existing)], { cwd });
    if (c.format === 'raw') writeFileSync(join(cwd, out), Buffer.alloc(c.existing, 0xee));
    else qemuIo(join(cwd, out), ['write -P 238 0 5M'], 'qcow2');
  }
  const args = ['convert', ...c.args, out];
  if (tool === 'qemu') {
    qemuImgOk(args, { cwd });
    return;
  }
  // Without the native module there are no image locks: an existing target is written with --no-lock.
  const r = vdisk(tool === 'js' && c.existing ? ['convert', '--no-lock', ...args.slice(1)] : args, { cwd, env: tool === 'js' ? { VDISK_NO_NATIVE: '1' } : {} });
  assert.equal(r.status, 0, `${c.name} (${tool}): ${r.stderr}`);
}

describe('convert through native copy requests', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  before(() => fixtures());

  for (const [i, c] of CASES.entries()) {
    it(c.name, (t) => {
      if (!requireQemu(t)) return;
      const [q, n, j] = ['q', 'n', 'j'].map((s) => `c${i}-${s}.${c.format}`) as [string, string, string];
      run(c, q, 'qemu');
      run(c, n, 'native');
      run(c, j, 'js');
      // The native and the JavaScript path make the same file, byte for byte.
      assert.ok(readFileSync(join(cwd, n)).equals(readFileSync(join(cwd, j))), `${n} and ${j} differ`);
      if (c.source) {
        const r = qemuImg(['compare', '-f', c.source[0], '-F', c.format, c.source[1], n], { cwd });
        assert.equal(r.status, 0, `compare: ${r.stdout}${r.stderr}`);
      }
      // Content and allocation as qemu-img's: guest map, and check's allocated clusters (no leaks, no corruption).
      assertSameContent(q, n, c.format, c.format, cwd);
      assert.deepEqual(guestMap(n, c.format), guestMap(q, c.format), `map of ${n}`);
      assert.equal(allocatedClusters(n, c.format, cwd), allocatedClusters(q, c.format, cwd), `allocated clusters of ${n}`);
    });
  }

  it('takes the native path (the module is there)', { skip: canCopyScan() ? false : 'native module not built' }, () => {
    assert.ok(canCopyScan());
  });
});
