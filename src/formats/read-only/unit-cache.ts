/**
 * Decoded compressed units (dmg chunks, cloop blocks) recently read, shared
 * by concurrent readers: reading a unit in pieces decodes it once. qemu
 * keeps one such buffer per image; vdisk keeps a few, up to a byte budget,
 * because its reads run in parallel (the newest unit is kept whatever its
 * size, ≤ 64 MiB by the formats' limits).
 */

/** Bytes of decoded units kept per image besides the newest. */
const BUDGET_BYTES = 64 * 1024 * 1024;

export class UnitCache {
  /** Insertion order is recency order: the first key is the least recently used. */
  readonly #units = new Map<number, { value: Promise<Uint8Array>; bytes: number }>();

  /** The decoded unit `key` (`bytes` long), decoding it once even for concurrent callers. */
  get(key: number, bytes: number, decode: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.#units.get(key);
    if (hit) {
      this.#units.delete(key);
      this.#units.set(key, hit);
      return hit.value;
    }
    const value = decode();
    this.#units.set(key, { value, bytes });
    // a failed decode is not kept: the next read tries again, as qemu's does
    value.catch(() => {
      if (this.#units.get(key)?.value === value) this.#units.delete(key);
    });
    this.#evict();
    return value;
  }

  #evict(): void {
    let total = 0;
    for (const u of this.#units.values()) total += u.bytes;
    for (const [k, u] of this.#units) {
      if (total <= BUDGET_BYTES || this.#units.size <= 1) break;
      this.#units.delete(k);
      total -= u.bytes;
    }
  }
}
