/**
 * A bounded cache of metadata tables (L2 tables, refcount blocks), keyed by
 * host offset, with dirty tracking. Dirty tables are written back in offset
 * order, after the cache's dependency (for L2 tables: the refcount cache)
 * has been written and flushed, so the on-disk order qcow2 needs holds.
 */
import type { ByteStore } from '../../io/byte-store.js';

interface Entry {
  data: Uint8Array;
  dirty: boolean;
}

/** Longest single read when prefetching tables adjacent in the file. */
const MAX_PREFETCH_READ = 1024 * 1024;

/**
 * A buffer for a table about to be read whole: ByteStore.read fills all of
 * it (zeros past the end), so zeroing it first would only cost time.
 */
function unfilled(bytes: number): Uint8Array {
  return Buffer.allocUnsafeSlow(bytes);
}

/** Options of a {@link TableCache}. */
export interface TableCacheOptions {
  /**
   * Reuse the buffers of evicted tables for new ones. Only for caches whose
   * users read a table right after get() resolves and keep no reference
   * across their next wait (read-only images: mapping). A walk over a big
   * image then reads hundreds of MiB of tables through a fixed set of
   * buffers, instead of leaving them to the garbage collector.
   */
  readonly recycle?: boolean | undefined;
}

/** Bounded LRU table cache (QEMU's Qcow2Cache analog). */
export class TableCache {
  readonly #store: ByteStore;
  readonly #tableSize: number;
  readonly #maxTables: number;
  readonly #entries = new Map<number, Entry>();
  readonly #loading = new Map<number, Promise<Uint8Array>>();
  readonly #recycle: boolean;
  /** Buffers of evicted tables, reusable once the event loop has turned (see #retire). */
  #retired: Uint8Array[] = [];
  readonly #free: Uint8Array[] = [];
  /** Runs before any dirty table is written (flush dependency). */
  beforeWrite: (() => Promise<void>) | undefined;

  constructor(store: ByteStore, tableSize: number, maxBytes: number, options: TableCacheOptions = {}) {
    this.#store = store;
    this.#tableSize = tableSize;
    this.#maxTables = Math.max(4, Math.floor(maxBytes / tableSize));
    this.#recycle = options.recycle === true;
  }

  /** Number of cached tables (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Most tables worth prefetching at once: a small share of the cache, so a batch never evicts itself. */
  get prefetchTables(): number {
    return Math.max(1, Math.min(32, Math.floor(this.#maxTables / 8)));
  }

  /** True when the table at `offset` is cached or being read. */
  has(offset: number): boolean {
    return this.#entries.has(offset) || this.#loading.has(offset);
  }

  /**
   * Starts reading the tables at `offsets` that are neither cached nor being
   * read, all at once, tables adjacent in the file in one request. get()
   * waits for them; a failed prefetch fails only the get() that meets it.
   */
  prefetch(offsets: readonly number[]): void {
    const todo = [...new Set(offsets)].filter((o) => !this.has(o)).sort((a, b) => a - b);
    const maxRun = Math.max(1, Math.floor(MAX_PREFETCH_READ / this.#tableSize));
    for (let i = 0; i < todo.length; ) {
      let j = i + 1;
      while (j < todo.length && j - i < maxRun && todo[j] === (todo[j - 1] as number) + this.#tableSize) j++;
      this.#prefetchRun(todo.slice(i, j));
      i = j;
    }
  }

  #prefetchRun(run: readonly number[]): void {
    const first = run[0] as number;
    const ts = this.#tableSize;
    const read = (async () => {
      const bytes = run.length === 1 ? this.#buffer() : unfilled(run.length * ts);
      await this.#store.read(first, bytes);
      return bytes;
    })();
    run.forEach((offset, k) => {
      const p = read.then((bytes) => {
        if (run.length === 1) return this.#install(offset, bytes);
        const table = this.#buffer();
        table.set(bytes.subarray(k * ts, (k + 1) * ts));
        return this.#install(offset, table);
      });
      const done = p.finally(() => {
        if (this.#loading.get(offset) === p) this.#loading.delete(offset);
      });
      done.catch(() => undefined); // nobody may ask for it; get() sees the error through `p`
      this.#loading.set(offset, p);
    });
  }

  /**
   * The table at `offset` when it is cached, without waiting and without
   * making it the most recently used (loops that look at one table entry
   * by entry would pay for that on every entry; their table is touched by
   * get() often enough).
   */
  peek(offset: number): Uint8Array | undefined {
    return this.#entries.get(offset)?.data;
  }

  /** The table at `offset` when it is cached, made the most recently used as get() does, without a promise. */
  cached(offset: number): Uint8Array | undefined {
    const hit = this.#entries.get(offset);
    if (!hit) return undefined;
    this.#entries.delete(offset);
    this.#entries.set(offset, hit);
    return hit.data;
  }

  /** The table at `offset`, read from the store when not cached. */
  async get(offset: number): Promise<Uint8Array> {
    const hit = this.cached(offset);
    if (hit) return hit;
    const pending = this.#loading.get(offset);
    if (pending) return pending;
    const p = this.#load(offset);
    this.#loading.set(offset, p);
    try {
      return await p;
    } finally {
      this.#loading.delete(offset);
    }
  }

  async #load(offset: number): Promise<Uint8Array> {
    const data = this.#buffer();
    await this.#store.read(offset, data);
    return this.#install(offset, data);
  }

  /** A buffer to read a table into (every byte gets overwritten). */
  #buffer(): Uint8Array {
    return this.#free.pop() ?? unfilled(this.#tableSize);
  }

  /**
   * Keeps an evicted table's buffer for reuse. A get() that resolved with it
   * may not have run its continuation yet; all such continuations run before
   * the event loop turns, so the buffer becomes reusable only then.
   */
  #retire(data: Uint8Array): void {
    if (!this.#recycle || data.byteLength !== this.#tableSize) return;
    this.#retired.push(data);
    if (this.#retired.length > 1) return;
    setImmediate(() => {
      const room = Math.max(0, 2 * this.prefetchTables - this.#free.length);
      this.#free.push(...this.#retired.slice(0, room));
      this.#retired = [];
    });
  }

  /** Caches a table just read, unless a newer copy was installed meanwhile. */
  async #install(offset: number, data: Uint8Array): Promise<Uint8Array> {
    const now = this.#entries.get(offset);
    if (now) return now.data; // someone installed a newer copy meanwhile
    await this.#makeRoom();
    const again = this.#entries.get(offset);
    if (again) return again.data;
    this.#evictClean(); // installs that went through #makeRoom together
    this.#entries.set(offset, { data, dirty: false });
    return data;
  }

  /** Installs a new (dirty) table at `offset`, e.g. a freshly allocated L2 table. */
  async put(offset: number, data: Uint8Array): Promise<void> {
    await this.#makeRoom();
    this.#entries.delete(offset);
    this.#evictClean();
    this.#entries.set(offset, { data, dirty: true });
  }

  /**
   * Marks the table at `offset` (whose contents are `data`, as returned by
   * get) as modified. Call it without awaiting anything after changing
   * `data`; an evicted table is put back, since `data` is the newest copy.
   */
  markDirty(offset: number, data: Uint8Array): void {
    const e = this.#entries.get(offset);
    if (e && e.data === data) {
      e.dirty = true;
      return;
    }
    this.#entries.set(offset, { data, dirty: true });
  }

  /** Forgets a table (after its cluster was freed); its pending changes are dropped. */
  drop(offset: number): void {
    this.#entries.delete(offset);
  }

  /** True when some table waits to be written. */
  get dirty(): boolean {
    for (const e of this.#entries.values()) if (e.dirty) return true;
    return false;
  }

  /** Writes every dirty table (dependency first), in offset order. */
  async writeBack(): Promise<void> {
    const dirty = [...this.#entries.entries()].filter(([, e]) => e.dirty).sort((a, b) => a[0] - b[0]);
    if (dirty.length === 0) return;
    if (this.beforeWrite) await this.beforeWrite();
    for (const [offset, e] of dirty) {
      e.dirty = false;
      await this.#store.write(offset, e.data);
    }
  }

  /** Evicts clean tables, least recently used first, until one more fits; false when only dirty ones are left. */
  #evictClean(): boolean {
    if (this.#entries.size < this.#maxTables) return true;
    for (const [offset, e] of this.#entries) {
      if (e.dirty) continue;
      this.#entries.delete(offset);
      this.#retire(e.data);
      if (this.#entries.size < this.#maxTables) return true;
    }
    return false;
  }

  async #makeRoom(): Promise<void> {
    // Everything is dirty: write back, then evict what is now clean.
    while (!this.#evictClean()) await this.writeBack();
  }
}
