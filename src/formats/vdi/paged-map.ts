/**
 * The VDI block map, read from the file a page at a time and kept in a
 * bounded LRU cache, so an image with a map as large as qemu allows
 * (0x1fffff80 entries, 2 GiB: a 512 TiB disk) opens without holding it
 * all in memory. Maps that fit the cache behave as if held whole.
 */
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { parseBlockMap } from './block-map.js';

/** Entries per page (64 KiB of map: 16 GiB of guest space at 1 MiB blocks). */
const PAGE_ENTRIES = 16384;
/** Entries read per chunk by {@link VdiBlockMap.chunks}. */
const SCAN_ENTRIES = 1024 * 1024;

/** A run of consecutive map entries. */
export interface MapChunk {
  /** Block number of `entries[0]`. */
  readonly first: number;
  /** The entries. */
  readonly entries: Uint32Array;
}

export class VdiBlockMap {
  /** Entries in the map (blocks in the image). */
  readonly length: number;
  readonly #store: ByteStore;
  readonly #offset: number;
  readonly #maxPages: number;
  /** Pages by number, least recently used first; a pending read is cached as its promise. */
  readonly #pages = new Map<number, Promise<Uint32Array>>();

  constructor(store: ByteStore, offset: number, length: number, cacheBytes: number = LIMITS.vdiBlockMapCacheBytes) {
    this.#store = store;
    this.#offset = offset;
    this.length = length;
    this.#maxPages = Math.max(1, Math.floor(cacheBytes / (PAGE_ENTRIES * 4)));
  }

  /** The page holding entry `block`, as a chunk starting at its first entry. */
  async page(block: number): Promise<MapChunk> {
    const n = Math.floor(block / PAGE_ENTRIES);
    let p = this.#pages.get(n);
    if (p) {
      this.#pages.delete(n);
    } else {
      p = this.#read(n * PAGE_ENTRIES, Math.min(PAGE_ENTRIES, this.length - n * PAGE_ENTRIES));
      p.catch(() => this.#pages.delete(n));
      if (this.#pages.size >= this.#maxPages) this.#pages.delete(this.#pages.keys().next().value as number);
    }
    this.#pages.set(n, p);
    return { first: n * PAGE_ENTRIES, entries: await p };
  }

  /** The entry of `block`. */
  async get(block: number): Promise<number> {
    const { first, entries } = await this.page(block);
    return entries[block - first] as number;
  }

  /**
   * Records that entry `block` now reads `value` (the caller wrote it to
   * the file first). A page being read picks it up once the read is done.
   */
  set(block: number, value: number): void {
    const n = Math.floor(block / PAGE_ENTRIES);
    void this.#pages.get(n)?.then((page) => {
      page[block - n * PAGE_ENTRIES] = value;
    });
  }

  /**
   * The first `count` entries (default all) in order, a chunk at a time,
   * read past the cache (check, the scan before writing).
   */
  async *chunks(count = this.length): AsyncGenerator<MapChunk> {
    const end = Math.min(count, this.length);
    for (let first = 0; first < end; first += SCAN_ENTRIES) {
      yield { first, entries: await this.#read(first, Math.min(SCAN_ENTRIES, end - first)) };
    }
  }

  async #read(first: number, count: number): Promise<Uint32Array> {
    const bytes = new Uint8Array(count * 4);
    await this.#store.read(this.#offset + first * 4, bytes);
    return parseBlockMap(bytes, count);
  }
}
