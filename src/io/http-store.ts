/**
 * A read-only ByteStore over HTTP(S) Range requests: size from HEAD (or a
 * ranged GET when HEAD is refused), reads pinned to the object's first
 * ETag/Last-Modified, retried with backoff, coalesced and, when small,
 * served from a block cache so metadata walks cost few round trips.
 */
import { UnsupportedError } from '../core/errors.js';
import type { HostExtent } from './byte-store.js';
import type { NetworkOptions } from './network-options.js';
import { BlockCache } from './http/block-cache.js';
import { HttpClient } from './http/client.js';
import { Limiter } from './http/limiter.js';
import { RangeQueue } from './http/range-queue.js';
import { parseHttpTarget } from './http/url.js';
import { closeOnFailure, ReadOnlyStore } from './read-only-store.js';

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
export class HttpStore extends ReadOnlyStore {
  /** The URL, with credentials and query string redacted (messages name it). */
  readonly name: string;
  readonly #client: HttpClient;
  readonly #queue: RangeQueue;
  readonly #cache: BlockCache;

  private constructor(client: HttpClient, size: number, concurrency: number) {
    super(size);
    this.name = client.shown;
    this.#client = client;
    this.#queue = new RangeQueue((start, end, deliver, target) => client.getRange(start, end, deliver, target), new Limiter(concurrency));
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
    return closeOnFailure(client, async () => {
      const probe = await client.probe(BLOCK_SIZE);
      const store = new HttpStore(client, probe.size, concurrency);
      if (probe.head) store.#cache.seed(probe.head);
      return store;
    });
  }

  protected async fetch(offset: number, into: Uint8Array): Promise<void> {
    if (into.length >= BLOCK_SIZE) await this.#queue.read(offset, into);
    else await this.#cache.read(offset, into);
  }

  /** Closes the pooled connections. */
  protected override release(): void {
    this.#client.close();
  }

  /**
   * All data: a server says nothing about holes, and a raw image's block
   * status then costs no reads (qemu's curl driver reports the same); the
   * copy still finds zeros in the bytes it reads.
   */
  async extents(offset: number, length: number): Promise<readonly HostExtent[] | undefined> {
    this.checkOpen();
    const n = Math.min(length, this.objectSize - offset);
    return n > 0 ? [{ offset, length: n, data: true }] : undefined;
  }

  /** Unknown: a server does not say how much space an object takes (qemu-img prints `disk size: unavailable`). */
  async allocatedSize(): Promise<number | undefined> {
    return undefined;
  }
}

/** The opener network-stores.ts registers for `http` and `https`. */
export function openHttpStore(name: string, options: HttpStoreOptions): Promise<HttpStore> {
  return HttpStore.open(name, options);
}
