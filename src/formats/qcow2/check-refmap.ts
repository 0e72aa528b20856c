/**
 * The in-memory refcount table a check rebuilds (qemu's IMRT), kept
 * compact: 16-bit counters in chunks allocated only where clusters are
 * referenced, plus a map for the rare counts above 65534. Memory follows
 * the referenced part of the file, never the virtual size.
 */

const CHUNK_BITS = 16;
const CHUNK = 2 ** CHUNK_BITS;
const BIG = 0xffff;

/** Reference counts by host cluster index. Pure; no I/O. */
export class ComputedRefcounts {
  readonly #chunks = new Map<number, Uint16Array>();
  readonly #big = new Map<number, number>();
  /** The chunk last touched: walks hit the same chunk many times in a row. */
  #lastIndex = -1;
  #last: Uint16Array | undefined;
  /** Chunk indices in order, rebuilt after a chunk is added (see {@link nextUsed}). */
  #sorted: number[] | undefined;
  /** Clusters covered (qemu's nb_clusters: the file's clusters, grown by references just past the end). */
  size: number;

  constructor(size: number) {
    this.size = size;
  }

  #chunk(ci: number): Uint16Array | undefined {
    if (ci === this.#lastIndex) return this.#last;
    const chunk = this.#chunks.get(ci);
    if (chunk) {
      this.#lastIndex = ci;
      this.#last = chunk;
    }
    return chunk;
  }

  /** Count of cluster `i`. */
  get(i: number): number {
    const chunk = this.#chunk(Math.floor(i / CHUNK));
    if (!chunk) return 0;
    const v = chunk[i % CHUNK] ?? 0;
    return v === BIG ? (this.#big.get(i) ?? BIG) : v;
  }

  /**
   * One more reference to cluster `i`, growing `size` to cover it; false
   * (and no change) when the count is already `max`.
   */
  increment(i: number, max: number): boolean {
    const chunk = this.#chunk(Math.floor(i / CHUNK));
    if (chunk) {
      const k = i % CHUNK;
      const v = chunk[k]!;
      if (v < BIG - 1 && v < max) {
        chunk[k] = v + 1;
        if (i >= this.size) this.size = i + 1;
        return true;
      }
    }
    const n = this.get(i);
    if (n >= max) return false;
    this.set(i, n + 1);
    return true;
  }

  /** Sets cluster `i` to `v`, growing `size` to cover it. */
  set(i: number, v: number): void {
    const ci = Math.floor(i / CHUNK);
    let chunk = this.#chunk(ci);
    if (!chunk) {
      if (v === 0) return;
      chunk = new Uint16Array(CHUNK);
      this.#chunks.set(ci, chunk);
      this.#sorted = undefined;
      this.#lastIndex = ci;
      this.#last = chunk;
    }
    const k = i % CHUNK;
    if (v >= BIG) {
      chunk[k] = BIG;
      this.#big.set(i, v);
    } else {
      if (chunk[k] === BIG) this.#big.delete(i);
      chunk[k] = v;
    }
    if (i >= this.size) this.size = i + 1;
  }

  /** Drops every count (keeps `size`). */
  clear(): void {
    this.#chunks.clear();
    this.#big.clear();
    this.#lastIndex = -1;
    this.#last = undefined;
    this.#sorted = undefined;
  }

  /**
   * First cluster in `[from, end)` whose count is non-zero, or `end`.
   * Jumps over chunks nothing references, so walks of a file grown far
   * past its data (a repair honouring a hostile refblock offset) cost
   * what is referenced, not the file's length.
   */
  nextUsed(from: number, end: number): number {
    let i = from;
    while (i < end) {
      const ci = Math.floor(i / CHUNK);
      const chunk = this.#chunk(ci);
      if (!chunk) {
        const next = this.#nextChunk(ci);
        if (next === undefined) return end;
        i = next * CHUNK;
        continue;
      }
      const stop = Math.min(end, (ci + 1) * CHUNK);
      for (; i < stop; i++) if (chunk[i % CHUNK] !== 0) return i;
    }
    return end;
  }

  /** Smallest chunk index above `ci`. */
  #nextChunk(ci: number): number | undefined {
    const keys = (this.#sorted ??= [...this.#chunks.keys()].sort((a, b) => a - b));
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! <= ci) lo = mid + 1;
      else hi = mid;
    }
    return keys[lo];
  }

  /**
   * Calls `fn` for each cluster below `size` whose count may be non-zero,
   * in order, skipping chunks nothing references.
   */
  forEachUsed(fn: (i: number, count: number) => void): void {
    const keys = [...this.#chunks.keys()].sort((a, b) => a - b);
    for (const ci of keys) {
      const chunk = this.#chunks.get(ci)!;
      const base = ci * CHUNK;
      const end = Math.min(CHUNK, this.size - base);
      for (let k = 0; k < end; k++) {
        const v = chunk[k]!;
        if (v !== 0) fn(base + k, v === BIG ? (this.#big.get(base + k) ?? BIG) : v);
      }
    }
  }

  /** First cluster at or after `from` whose count is zero. */
  firstFree(from: number): number {
    for (let i = from; ; i++) {
      const chunk = this.#chunk(Math.floor(i / CHUNK));
      if (!chunk) return i;
      if (chunk[i % CHUNK] === 0) return i;
    }
  }

  /** Bytes held (for tests of the memory bound). */
  get memoryBytes(): number {
    return this.#chunks.size * CHUNK * 2 + this.#big.size * 16;
  }
}
