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

/** True when `n` is a multiple of `align`. */
export function isAligned(n: number, align: number): boolean {
  return n % align === 0;
}

/** True when every byte is zero; compares natively in 64 KiB slices. */
export function isZero(buf: Uint8Array): boolean {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  // Cheap early exits, as QEMU's buffer_is_zero does.
  if (b.length === 0) return true;
  if (b[0] !== 0 || b[b.length - 1] !== 0 || b[b.length >>> 1] !== 0) return false;
  for (let off = 0; off < b.length; off += ZERO_CHUNK.length) {
    const n = Math.min(ZERO_CHUNK.length, b.length - off);
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
  const first = buf.subarray(0, Math.min(granule, buf.length));
  const zero = isZero(first);
  let off = first.length;
  while (off < buf.length) {
    const g = buf.subarray(off, Math.min(off + granule, buf.length));
    if (isZero(g) !== zero) break;
    off += g.length;
  }
  return { zero, length: off };
}

/** Reads an unsigned 64-bit big- or little-endian field as a bigint. */
export function readU64(view: DataView, offset: number, littleEndian = false): bigint {
  return view.getBigUint64(offset, littleEndian);
}

/** Reads a 64-bit field and returns it as a number, or undefined when above 2^53-1. */
export function readU64Safe(view: DataView, offset: number, littleEndian = false): number | undefined {
  const v = view.getBigUint64(offset, littleEndian);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}
