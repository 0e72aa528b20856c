/**
 * Allocation comparison for the copysem differential tests: the same
 * command run by qemu-img and by vdisk on identical inputs must leave
 * images with the same content and the same allocation (`qemu-img map
 * --output=json` without host offsets, and `qemu-img check`'s allocated
 * clusters) — or, where vdisk deliberately does better, no more allocation
 * than qemu-img's.
 */
import assert from 'node:assert/strict';

import { qemuImg } from './qemu.js';

/** What a case expects of vdisk's image against qemu-img's. */
export type Expect =
  /** Same map (without host offsets) and allocated clusters. */
  | 'same'
  /** Same content, and at most qemu-img's allocated clusters and data bytes (a deliberate difference). */
  | 'smaller';

/** One map entry without its host offset. */
interface Entry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}

/** `qemu-img map --output=json`, host offsets dropped and neighbours that then match merged. */
export function mapOf(file: string, format: string, cwd: string): Entry[] {
  const r = qemuImg(['map', '--output=json', '-f', format, file], { cwd });
  assert.equal(r.status, 0, `map ${file}: ${r.stderr}`);
  const out: Entry[] = [];
  for (const e of JSON.parse(r.stdout) as Entry[]) {
    const last = out.at(-1);
    const { start, length, depth, present, zero, data } = e;
    if (last && last.depth === depth && last.present === present && last.zero === zero && last.data === data && last.start + last.length === start) last.length += length;
    else out.push({ start, length, depth, present, zero, data });
  }
  return out;
}

/** Bytes the image itself (depth 0) stores as data. */
function dataBytes(map: readonly Entry[]): number {
  return map.filter((e) => e.depth === 0 && e.data && !e.zero).reduce((n, e) => n + e.length, 0);
}

/** `qemu-img check`'s allocated clusters, when the format reports them. */
export function allocatedClusters(file: string, format: string, cwd: string): number | undefined {
  const r = qemuImg(['check', '--output=json', '-f', format, file], { cwd });
  try {
    const j = JSON.parse(r.stdout) as { 'allocated-clusters'?: number; corruptions?: number; leaks?: number };
    assert.ok(!j.corruptions && !j.leaks, `check ${file}: ${r.stdout}`);
    return j['allocated-clusters'];
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return undefined; // formats without check support
  }
}

/** Content must be identical (`qemu-img compare`, exit 0). */
export function assertSameContent(a: string, b: string, fa: string, fb: string, cwd: string): void {
  const r = qemuImg(['compare', '-f', fa, '-F', fb, a, b], { cwd });
  assert.equal(r.status, 0, `compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

/** Compares vdisk's image `ours` with qemu-img's `theirs` (both of `format`) as `expect` says. */
export function assertAllocation(theirs: string, ours: string, format: string, expect: Expect, cwd: string): void {
  assertSameContent(theirs, ours, format, format, cwd);
  const [qm, vm] = [mapOf(theirs, format, cwd), mapOf(ours, format, cwd)];
  const [qa, va] = [allocatedClusters(theirs, format, cwd), allocatedClusters(ours, format, cwd)];
  if (expect === 'same') {
    assert.deepEqual(vm, qm, `map of ${ours} differs from qemu-img's ${theirs}`);
    assert.equal(va, qa, `allocated clusters of ${ours}`);
    return;
  }
  assert.ok(dataBytes(vm) <= dataBytes(qm), `${ours} stores ${dataBytes(vm)} data bytes, qemu-img's ${dataBytes(qm)}`);
  if (qa !== undefined && va !== undefined) assert.ok(va <= qa, `${ours} allocates ${va} clusters, qemu-img's ${qa}`);
}
