/** Bit operations on dirty bitmaps (one bit per granule, LSB first), byte-wise where possible. */

/** Sets the bits of every granule touching `[offset, offset+length)`. */
export function markRange(bits: Uint8Array, granularity: number, offset: number, length: number): void {
  let first = Math.floor(offset / granularity);
  const last = Math.min(bits.length * 8 - 1, Math.floor((offset + length - 1) / granularity));
  while (first <= last && first % 8 !== 0) {
    bits[first >>> 3]! |= 1 << (first & 7);
    first++;
  }
  const fullEnd = Math.floor((last + 1) / 8);
  if (first <= last && first / 8 < fullEnd) {
    bits.fill(0xff, first / 8, fullEnd);
    first = fullEnd * 8;
  }
  for (; first <= last; first++) bits[first >>> 3]! |= 1 << (first & 7);
}

/** ORs `src` (of granularity `srcGran`) into `dst` (of `dstGran`), over guest bytes `[0, size)`. */
export function mergeBits(dst: Uint8Array, dstGran: number, src: Uint8Array, srcGran: number, size: number): void {
  if (dstGran === srcGran) {
    const n = Math.min(dst.length, src.length);
    for (let i = 0; i < n; i++) dst[i]! |= src[i]!;
    return;
  }
  for (let byte = 0; byte < src.length; byte++) {
    const v = src[byte]!;
    if (v === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if (!(v & (1 << bit))) continue;
      const start = (byte * 8 + bit) * srcGran;
      if (start >= size) return;
      markRange(dst, dstGran, start, Math.min(srcGran, size - start));
    }
  }
}
