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

/** Bounded LRU table cache (QEMU's Qcow2Cache analog). */
export class TableCache {
  readonly #store: ByteStore;
  readonly #tableSize: number;
  readonly #maxTables: number;
  readonly #entries = new Map<number, Entry>();
  readonly #loading = new Map<number, Promise<Uint8Array>>();
  /** Runs before any dirty table is written (flush dependency). */
  beforeWrite: (() => Promise<void>) | undefined;

  constructor(store: ByteStore, tableSize: number, maxBytes: number) {
    this.#store = store;
    this.#tableSize = tableSize;
    this.#maxTables = Math.max(4, Math.floor(maxBytes / tableSize));
  }

  /** Number of cached tables (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** The table at `offset`, read from the store when not cached. */
  async get(offset: number): Promise<Uint8Array> {
    const hit = this.#entries.get(offset);
    if (hit) {
      this.#entries.delete(offset);
      this.#entries.set(offset, hit);
      return hit.data;
    }
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
    const data = new Uint8Array(this.#tableSize);
    await this.#store.read(offset, data);
    const now = this.#entries.get(offset);
    if (now) return now.data; // someone installed a newer copy meanwhile
    await this.#makeRoom();
    const again = this.#entries.get(offset);
    if (again) return again.data;
    this.#entries.set(offset, { data, dirty: false });
    return data;
  }

  /** Installs a new (dirty) table at `offset`, e.g. a freshly allocated L2 table. */
  async put(offset: number, data: Uint8Array): Promise<void> {
    await this.#makeRoom();
    this.#entries.delete(offset);
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

  async #makeRoom(): Promise<void> {
    if (this.#entries.size < this.#maxTables) return;
    for (const [offset, e] of this.#entries) {
      if (!e.dirty) {
        this.#entries.delete(offset);
        return;
      }
    }
    // Everything is dirty: write back, then drop the least recently used.
    await this.writeBack();
    const first = this.#entries.keys().next();
    if (!first.done) this.#entries.delete(first.value);
  }
}
