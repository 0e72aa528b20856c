/**
 * A small cache of aligned blocks for small reads: image metadata (headers,
 * tables, directories) comes in many reads of a few hundred bytes to a few
 * KiB, which would otherwise each cost a round trip. Blocks being fetched
 * are shared, so concurrent reads of one block make one request; the least
 * recently used block is dropped first.
 */

/** Reads `[start, start + into.length)` of the object (inside its size). */
export type BlockFetch = (start: number, into: Uint8Array) => Promise<void>;

/** Cached and in-flight blocks of one object. */
export class BlockCache {
  readonly blockSize: number;
  readonly #capacity: number;
  readonly #fetch: BlockFetch;
  readonly #size: number;
  // Insertion order is recency: a hit moves the block to the end.
  readonly #blocks = new Map<number, Promise<Uint8Array>>();

  constructor(fetch: BlockFetch, size: number, blockSize: number, capacity: number) {
    this.#fetch = fetch;
    this.#size = size;
    this.blockSize = blockSize;
    this.#capacity = Math.max(2, capacity);
  }

  /** Seeds block 0 with bytes already fetched (the open's first ranged GET). */
  seed(bytes: Uint8Array): void {
    if (bytes.length >= Math.min(this.blockSize, this.#size)) this.#remember(0, Promise.resolve(bytes.subarray(0, this.blockSize)));
  }

  /** Fills `into` from `offset`; the range must lie inside the object. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + into.length - 1) / this.blockSize);
    this.#fetchMissing(first, last);
    for (let b = first; b <= last; b++) {
      const block = await (this.#blocks.get(b) ?? this.#fetchRun(b, b));
      const blockStart = b * this.blockSize;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + into.length, blockStart + block.length);
      into.set(block.subarray(from - blockStart, to - blockStart), from - offset);
    }
  }

  /** Starts fetches for the blocks of `[first, last]` not held, one request per run of missing blocks. */
  #fetchMissing(first: number, last: number): void {
    let runStart = -1;
    for (let b = first; b <= last + 1; b++) {
      const held = b <= last && this.#touch(b);
      if (b <= last && !held && runStart < 0) runStart = b;
      if ((held || b > last) && runStart >= 0) {
        void this.#fetchRun(runStart, b - 1).catch(() => undefined);
        runStart = -1;
      }
    }
  }

  /** Fetches blocks `[first, last]` in one request and caches each; resolves with block `first`. */
  #fetchRun(first: number, last: number): Promise<Uint8Array> {
    const start = first * this.blockSize;
    const end = Math.min(this.#size, (last + 1) * this.blockSize);
    const buf = new Uint8Array(end - start);
    const fetched = this.#fetch(start, buf);
    let firstBlock: Promise<Uint8Array> | undefined;
    for (let b = first; b <= last; b++) {
      const at = (b - first) * this.blockSize;
      const p = fetched.then(() => buf.subarray(at, Math.min(buf.length, at + this.blockSize)));
      // A failed fetch is forgotten, so a later read tries again.
      p.catch(() => {
        if (this.#blocks.get(b) === p) this.#blocks.delete(b);
      });
      this.#remember(b, p);
      firstBlock ??= p;
    }
    return firstBlock as Promise<Uint8Array>;
  }

  /** True when block `b` is held or on its way; marks it recently used. */
  #touch(b: number): boolean {
    const p = this.#blocks.get(b);
    if (p === undefined) return false;
    this.#blocks.delete(b);
    this.#blocks.set(b, p);
    return true;
  }

  #remember(b: number, p: Promise<Uint8Array>): void {
    this.#blocks.delete(b);
    this.#blocks.set(b, p);
    while (this.#blocks.size > this.#capacity) {
      const oldest = this.#blocks.keys().next().value as number;
      this.#blocks.delete(oldest);
    }
  }
}
