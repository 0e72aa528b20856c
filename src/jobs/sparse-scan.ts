/**
 * Zero detection inside data that convert reads (`-S`), as qemu-img's
 * is_allocated_sectors_min does it: 512-byte sectors, a buffer that starts
 * with zeros is a zero run however short, zero runs after data shorter than
 * `min` sectors are written as data, and run ends are moved to `alignment`
 * sectors so neighbouring requests do not rewrite a partial block. Matching
 * it sector for sector makes the target's allocation equal qemu-img's.
 */
import { scanRun } from '../core/bytes.js';
import type { ScanUnit } from '../block/types.js';

const SECTOR = 512;

/** A run at the start of a buffer: data to write, or zeros. `length` in bytes. */
export interface SparseRun {
  readonly data: boolean;
  readonly length: number;
}

/** The largest power of two not above `n` (n >= 1). */
function pow2floor(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/** Alignment, in sectors, of zero/data boundaries for a sparse size of `sparseSize` bytes (qemu's s.alignment). */
export function sparseAlignment(sparseSize: number): number {
  return Math.max(1, pow2floor(Math.max(1, Math.floor(sparseSize / SECTOR))));
}

/** qemu's is_allocated_sectors: the sectors at the start of `buf` with the same zero-ness, ends aligned. */
function sameRun(buf: Uint8Array, sector: number, alignment: number): SparseRun {
  const run = scanRun(buf, SECTOR);
  if (run.length >= buf.length) return { data: !run.zero, length: buf.length };
  const sectors = Math.ceil(buf.length / SECTOR);
  let i = run.length / SECTOR;
  let zero = run.zero;
  const tail = (sector + i) % alignment;
  if (tail) {
    // A short zero run before data is rewritten by the data's read-modify-write anyway.
    if (zero && i <= tail) zero = false;
    i = zero ? i - tail : Math.min(i + alignment - tail, sectors);
  }
  return { data: !zero, length: Math.min(i * SECTOR, buf.length) };
}

/**
 * The next run of `buf` (at target sector `sector`): zeros to leave sparse,
 * or data to write, where data swallows zero runs shorter than `minBytes`.
 */
export function nextSparseRun(buf: Uint8Array, sector: number, minBytes: number, alignment: number): SparseRun {
  const min = Math.min(Math.max(1, Math.floor(minBytes / SECTOR)), Math.ceil(buf.length / SECTOR));
  const first = sameRun(buf, sector, alignment);
  if (!first.data) return first;
  let used = first.length;
  let checked = first.length;
  while (checked < buf.length) {
    const r = sameRun(buf.subarray(checked), sector + checked / SECTOR, alignment);
    checked += r.length;
    if (r.data) used = checked;
    else if (Math.ceil(r.length / SECTOR) >= min) break;
  }
  return { data: true, length: used };
}

/**
 * The runs of a request of convert's at target offset `at`, in the form the
 * native scan returns them (> 0 data, < 0 zeros): data swallows zero runs
 * shorter than `sparseSize`, and with `sparseSize` 0 all of it is data.
 * With `unit`, each unit is scanned on its own (the native scan's mirror).
 */
export function sparseRuns(chunk: Uint8Array, at: number, sparseSize: number, unit?: ScanUnit): number[] {
  if (sparseSize === 0) return chunk.length > 0 ? [chunk.length] : [];
  const alignment = sparseAlignment(sparseSize);
  const runs: number[] = [];
  for (let pos = 0; pos < chunk.length; ) {
    let segment = chunk.length - pos;
    if (unit) segment = Math.min(segment, unit.size - ((((at + pos - unit.base) % unit.size) + unit.size) % unit.size));
    const run = nextSparseRun(chunk.subarray(pos, pos + segment), Math.floor((at + pos) / SECTOR), sparseSize, alignment);
    const signed = run.data ? run.length : -run.length;
    const last = runs.length - 1;
    if (last >= 0 && runs[last]! > 0 === run.data) runs[last] = runs[last]! + signed;
    else runs.push(signed);
    pos += run.length;
  }
  return runs;
}
