/** Byte and alignment helpers used on hot paths. */

const ZERO_CHUNK = new Uint8Array(64 * 1024);

/** Rounds `n` up to a multiple of `align` (any positive integer). */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** Rounds `n` down to a multiple of `align`. */
export function alignDown(n: number, align: number): number {
  return Math.floor(n / align) * align;
}

/** True when every byte is zero; compares natively in 64 KiB slices. */
export function isZero(buf: Uint8Array): boolean {
  return zeroAt(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), 0, buf.byteLength);
}

/** True when `b[start, end)` is all zero; allocates nothing (the copy loops call it per 4 KiB). */
function zeroAt(b: Buffer, start: number, end: number): boolean {
  if (end <= start) return true;
  // Cheap early exits, as QEMU's buffer_is_zero does.
  if (b[start] !== 0 || b[end - 1] !== 0 || b[(start + end) >>> 1] !== 0) return false;
  for (let off = start; off < end; off += ZERO_CHUNK.length) {
    const n = Math.min(ZERO_CHUNK.length, end - off);
    if (b.compare(ZERO_CHUNK, 0, n, off, off + n) !== 0) return false;
  }
  return true;
}

/**
 * Length of the run at the start of `buf` that is all zero (`zero: true`) or
 * that has no all-zero `granule` (`zero: false`), in whole granules (the last
 * one may be short). The copy loops use it to keep targets sparse.
 */
export function scanRun(buf: Uint8Array, granule: number): { zero: boolean; length: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = b.length;
  let off = Math.min(granule, len);
  const zero = zeroAt(b, 0, off);
  if (zero) {
    // The run ends at the granule holding the first non-zero byte (granules start at multiples of `granule`).
    const first = firstNonZero(b, off);
    return { zero, length: first === len ? len : Math.floor(first / granule) * granule };
  }
  while (off < len) {
    const end = Math.min(off + granule, len);
    // Data's granules nearly always fail these byte checks: inline, without a call per granule
    // (convert scans every byte it reads, on the main thread when the source is not a file).
    if (b[off] === 0 && b[end - 1] === 0 && b[(off + end) >>> 1] === 0 && zeroAt(b, off, end)) break;
    off = end;
  }
  return { zero, length: off };
}

/**
 * Index of the first non-zero byte of `b` at or after `start` (`b.length`
 * when none): native compares of large slices, then halving the slice that
 * differs, so a zero run costs a few calls however it ends.
 */
function firstNonZero(b: Buffer, start: number): number {
  for (let off = start; off < b.length; off += ZERO_CHUNK.length) {
    let end = Math.min(off + ZERO_CHUNK.length, b.length);
    if (b.compare(ZERO_CHUNK, 0, end - off, off, end) === 0) continue;
    let from = off;
    while (end - from > 64) {
      const mid = (from + end) >>> 1;
      if (b.compare(ZERO_CHUNK, 0, mid - from, from, mid) === 0) from = mid;
      else end = mid;
    }
    for (let i = from; i < end; i++) if (b[i] !== 0) return i;
  }
  return b.length;
}

/** Reads a 64-bit field and returns it as a number, or undefined when above 2^53-1. */
export function readU64Safe(view: DataView, offset: number, littleEndian = false): number | undefined {
  const v = view.getBigUint64(offset, littleEndian);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}
