/**
 * QED's L1 and L2 tables, read a page at a time through a bounded LRU
 * cache. A table can be as large as 1 GiB (64 MiB clusters × 16), so no
 * table is ever held whole: lookups read the page holding the entries
 * they need, the check walks tables page by page, and a new table is
 * written as zeros in chunks. Entries are little-endian u64 byte offsets,
 * held as numbers (values past 2^53 lose precision, but such values are
 * past any file and therefore invalid whatever their low bits).
 */
import type { ByteStore } from '../driver.js';

/** Largest page read at once (8192 entries); smaller tables are one page. */
const MAX_PAGE_BYTES = 64 * 1024;
/** Zeros written per call when a new table is laid down. */
const ZERO_CHUNK = new Uint8Array(1024 * 1024);

/** Entries `[first, first + entries.length)` of the table at `table`. */
export interface TableRun {
  readonly first: number;
  readonly entries: Float64Array;
}

/** Decodes little-endian u64 entries. */
function decodeEntries(bytes: Uint8Array): Float64Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = v.getUint32(i * 8 + 4, true) * 0x100000000 + v.getUint32(i * 8, true);
  return out;
}

/** Encodes entries as little-endian u64. */
function encodeEntries(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const n = values[i] as number;
    v.setUint32(i * 8, n % 0x100000000, true);
    v.setUint32(i * 8 + 4, Math.floor(n / 0x100000000), true);
  }
  return out;
}

export class QedTables {
  readonly #store: ByteStore;
  readonly #pageBytes: number;
  readonly #maxPages: number;
  /** Pages by host offset, least recently used first; a pending read is cached as its promise. */
  readonly #pages = new Map<number, Promise<Float64Array>>();

  constructor(store: ByteStore, tableBytes: number, cacheBytes: number) {
    this.#store = store;
    this.#pageBytes = Math.min(tableBytes, MAX_PAGE_BYTES);
    this.#maxPages = Math.max(2, Math.floor(cacheBytes / this.#pageBytes));
  }

  /** Entries per page. */
  get pageEntries(): number {
    return this.#pageBytes / 8;
  }

  /** The entries from `index` to the end of the page holding it, at most `count` of them. */
  async run(table: number, index: number, count = Infinity): Promise<TableRun> {
    const per = this.pageEntries;
    const pageFirst = index - (index % per);
    const page = await this.#page(table + pageFirst * 8);
    const start = index - pageFirst;
    return { first: index, entries: page.subarray(start, Math.min(per, start + count)) };
  }

  /** One entry. */
  async get(table: number, index: number): Promise<number> {
    return (await this.run(table, index, 1)).entries[0] as number;
  }

  /** Writes entries `[first, first + values.length)` to the file, then to the cached pages that hold them. */
  async set(table: number, first: number, values: ArrayLike<number>): Promise<void> {
    const copy = Float64Array.from(values);
    await this.#store.write(table + first * 8, encodeEntries(copy));
    this.#patch(table, first, copy);
  }

  /**
   * Lays down a new table at `table`: zeros, with `values` at `first`, all
   * written before the caller links it (crash-safe order: table before L1).
   */
  async create(table: number, tableBytes: number, first: number, values: ArrayLike<number>): Promise<void> {
    for (let pos = 0; pos < tableBytes; pos += ZERO_CHUNK.length) {
      await this.#store.write(table + pos, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, tableBytes - pos)));
    }
    for (let at = table; at < table + tableBytes; at += this.#pageBytes) this.#pages.delete(at);
    await this.set(table, first, values);
  }

  /** Forgets every cached page (after the file changed behind the cache). */
  clear(): void {
    this.#pages.clear();
  }

  #patch(table: number, first: number, values: ArrayLike<number>): void {
    const per = this.pageEntries;
    for (let i = 0; i < values.length; ) {
      const index = first + i;
      const pageFirst = index - (index % per);
      const p = this.#pages.get(table + pageFirst * 8);
      const n = Math.min(values.length - i, pageFirst + per - index);
      if (p) {
        const from = i;
        void p.then((page) => {
          for (let k = 0; k < n; k++) page[index - pageFirst + k] = values[from + k] as number;
        });
      }
      i += n;
    }
  }

  #page(at: number): Promise<Float64Array> {
    let p = this.#pages.get(at);
    if (p) {
      this.#pages.delete(at);
    } else {
      p = this.#read(at);
      p.catch(() => this.#pages.delete(at));
      if (this.#pages.size >= this.#maxPages) this.#pages.delete(this.#pages.keys().next().value as number);
    }
    this.#pages.set(at, p);
    return p;
  }

  async #read(at: number): Promise<Float64Array> {
    const bytes = new Uint8Array(this.#pageBytes);
    await this.#store.read(at, bytes);
    return decodeEntries(bytes);
  }
}
