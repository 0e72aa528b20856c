/**
 * Sector bitmaps: before each block's data, one bit per 512-byte sector,
 * most significant bit of byte 0 first. In a differencing disk a set bit
 * means "this file holds the sector", a clear bit "read the parent".
 * Dynamic disks are read as QEMU reads them: the whole allocated block is
 * data (QEMU sets every bit when it allocates). Pure functions plus a small
 * bounded cache.
 */

/** True when sector `i` of the block is marked present. */
export function bitSet(bitmap: Uint8Array, i: number): boolean {
  return (((bitmap[i >>> 3] ?? 0) >>> (7 - (i & 7))) & 1) === 1;
}

/**
 * Length in sectors of the run of equal bits starting at sector `first`,
 * looking at no more than `max` sectors.
 */
export function runLength(bitmap: Uint8Array, first: number, max: number): { set: boolean; sectors: number } {
  const set = bitSet(bitmap, first);
  let i = first + 1;
  const limit = first + max;
  while (i < limit) {
    // Whole bytes at a time once aligned.
    if ((i & 7) === 0 && i + 8 <= limit) {
      const b = bitmap[i >>> 3] ?? 0;
      if (b === (set ? 0xff : 0)) {
        i += 8;
        continue;
      }
    }
    if (bitSet(bitmap, i) !== set) break;
    i++;
  }
  return { set, sectors: i - first };
}

/** A least-recently-used cache of block bitmaps, bounded by entry count. */
export class BitmapCache {
  readonly #max: number;
  readonly #map = new Map<number, Uint8Array>();

  constructor(max: number) {
    this.#max = max;
  }

  get(block: number): Uint8Array | undefined {
    const b = this.#map.get(block);
    if (b) {
      this.#map.delete(block);
      this.#map.set(block, b);
    }
    return b;
  }

  set(block: number, bitmap: Uint8Array): void {
    this.#map.delete(block);
    this.#map.set(block, bitmap);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
  }
}
