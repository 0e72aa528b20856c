/**
 * A read-only ByteStore over HTTP(S) Range requests: size from HEAD (or a
 * ranged GET when HEAD is refused), reads pinned to the object's first
 * ETag/Last-Modified, retried with backoff, coalesced and, when small,
 * served from a block cache so metadata walks cost few round trips.
 */
import { IoError, UnsupportedError } from '../core/errors.js';
import type { ByteStore, HostExtent } from './byte-store.js';
import type { NetworkOptions } from './network-options.js';
import { BlockCache } from './http/block-cache.js';
import { HttpClient } from './http/client.js';
import { RangeQueue } from './http/range-queue.js';
import { parseHttpTarget } from './http/url.js';

/** Cache block: reads smaller than this go through the cache, larger ones straight to the server. */
const BLOCK_SIZE = 256 * 1024;
/** Blocks kept (8 MiB). */
const CACHE_BLOCKS = 32;
/** Requests in flight when the caller does not say. */
const DEFAULT_CONCURRENCY = 4;

/** How an HTTP store is opened. */
export interface HttpStoreOptions extends NetworkOptions {
  /** Must be true (or absent): HTTP objects are read-only. */
  readonly readOnly?: boolean | undefined;
}

/**
 * A read-only store over an `http://` or `https://` URL.
 *
 * @example
 * ```ts
 * const store = await HttpStore.open('https://example.com/disk.qcow2', { headers: { authorization: 'Bearer …' } });
 * try { console.log(await info(store, { trust: 'none' })); } finally { await store.close(); }
 * ```
 */
export class HttpStore implements ByteStore {
  /** The URL, with credentials and query string redacted (messages name it). */
  readonly name: string;
  readonly readOnly = true;
  readonly #client: HttpClient;
  readonly #size: number;
  readonly #queue: RangeQueue;
  readonly #cache: BlockCache;
  #closed = false;

  private constructor(client: HttpClient, size: number, concurrency: number) {
    this.name = client.shown;
    this.#client = client;
    this.#size = size;
    this.#queue = new RangeQueue((start, end, deliver) => client.getRange(start, end, deliver), concurrency);
    this.#cache = new BlockCache((start, into) => this.#queue.read(start, into), size, BLOCK_SIZE, CACHE_BLOCKS);
  }

  /**
   * Opens `url`: finds its size and pins its version.
   *
   * @throws {NotFoundError} ENOENT for 404/410
   * @throws {PermissionError} EPERM for 401/403
   * @throws {UnsupportedError} EUNSUPPORTED for a server that does not serve byte ranges, or a writable open
   * @throws {IoError} EIO when the server cannot be reached after the retries
   */
  static async open(url: string, options: HttpStoreOptions = {}): Promise<HttpStore> {
    const target = parseHttpTarget(url);
    if (options.readOnly === false) throw new UnsupportedError(`Could not open '${target.shown}' for writing: HTTP images are read-only`, { file: target.shown });
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY));
    const client = new HttpClient(target, options, concurrency);
    try {
      const probe = await client.probe(BLOCK_SIZE);
      const store = new HttpStore(client, probe.size, concurrency);
      if (probe.head) store.#cache.seed(probe.head);
      return store;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** The object's size, as the server gave it at open. */
  async size(): Promise<number> {
    this.#check();
    return this.#size;
  }

  /** Reads what lies inside the object; bytes past its end read as zeros. */
  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#check();
    const n = Math.max(0, Math.min(into.length, this.#size - offset));
    into.fill(0, n);
    if (n === 0) return 0;
    const part = into.subarray(0, n);
    if (n >= BLOCK_SIZE) await this.#queue.read(offset, part);
    else await this.#cache.read(offset, part);
    return n;
  }

  /** Refused: HTTP objects are read-only. */
  async write(): Promise<void> {
    throw this.#readOnlyError();
  }

  /** Refused: HTTP objects are read-only. */
  async truncate(): Promise<void> {
    throw this.#readOnlyError();
  }

  /** Nothing to flush (read-only). */
  async flush(): Promise<void> {
    this.#check();
  }

  /** Closes the pooled connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  /**
   * All data: a server says nothing about holes, and a raw image's block
   * status then costs no reads (qemu's curl driver reports the same); the
   * copy still finds zeros in the bytes it reads.
   */
  async extents(offset: number, length: number): Promise<readonly HostExtent[] | undefined> {
    this.#check();
    const n = Math.min(length, this.#size - offset);
    return n > 0 ? [{ offset, length: n, data: true }] : undefined;
  }

  /** Unknown: a server does not say how much space an object takes (qemu-img prints `disk size: unavailable`). */
  async allocatedSize(): Promise<number | undefined> {
    return undefined;
  }

  #check(): void {
    if (this.#closed) throw new IoError(`'${this.name}' is closed`, { file: this.name });
  }

  #readOnlyError(): UnsupportedError {
    return new UnsupportedError(`'${this.name}' is read-only`, { file: this.name });
  }
}

/** The opener network-stores.ts registers for `http` and `https`. */
export function openHttpStore(name: string, options: HttpStoreOptions): Promise<HttpStore> {
  return HttpStore.open(name, options);
}
