/**
 * A custom ByteStore: a read-only image served over HTTP, read with Range
 * requests (`fetch`), so `info`, `check`, `compare` and `convert` work on an
 * image without downloading it first. docs/custom-bytestore.md walks
 * through it.
 *
 * Run: node build/examples/http-range-store.js URL TARGET.qcow2
 */
import { convert, info, IoError, NotFoundError, UnsupportedError, type ByteStore } from '../src/index.js';

/** A read-only ByteStore over HTTP Range GETs. */
export class HttpRangeStore implements ByteStore {
  readonly readOnly = true;
  #closed = false;

  private constructor(
    readonly name: string,
    readonly url: string,
    readonly length: number,
  ) {}

  /** Asks the server for the size (a one-byte Range GET, whose Content-Range names the total). */
  static async open(url: string): Promise<HttpRangeStore> {
    const res = await fetch(url, { headers: { range: 'bytes=0-0' } });
    await res.body?.cancel();
    if (res.status === 404) throw new NotFoundError(`Could not open '${url}': No such file or directory`, { file: url });
    const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (res.status !== 206 || total === undefined) {
      throw new UnsupportedError(`Could not open '${url}': the server does not serve byte ranges (HTTP ${res.status})`, { file: url });
    }
    return new HttpRangeStore(url, url, Number(total));
  }

  async size(): Promise<number> {
    this.#check();
    return this.length;
  }

  /** One Range GET per call; bytes past the end read as zeros, as the ByteStore contract asks. */
  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#check();
    const n = Math.max(0, Math.min(into.length, this.length - offset));
    into.fill(0, n);
    if (n === 0) return 0;
    const res = await fetch(this.url, { headers: { range: `bytes=${offset}-${offset + n - 1}` } });
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new IoError(`Could not read '${this.name}': HTTP ${res.status}`, { file: this.name, offset });
    }
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.length !== n) throw new IoError(`Could not read '${this.name}': short range (${body.length} of ${n} bytes)`, { file: this.name, offset });
    into.set(body);
    return n;
  }

  // vdisk opens a read-only store read-only and never calls these; a store still says no in its own words.
  async write(): Promise<void> {
    throw this.#readOnlyError();
  }

  async truncate(): Promise<void> {
    throw this.#readOnlyError();
  }

  async flush(): Promise<void> {
    this.#check();
  }

  /** Nothing to release but the name: fetch keeps no connection that needs closing. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #check(): void {
    if (this.#closed) throw new IoError(`'${this.name}' is closed`, { file: this.name });
  }

  #readOnlyError(): UnsupportedError {
    return new UnsupportedError(`'${this.name}' is read-only`, { file: this.name });
  }
}

/** Describes the image at `url` and converts it to a local qcow2 file `target`. */
export async function main(url: string, target: string): Promise<string[]> {
  const store = await HttpRangeStore.open(url);
  try {
    // An image on a server names its backing file relative to nothing local: follow no reference.
    const [description] = await info(store, { trust: 'none' });
    const result = await convert(store, target, { targetFormat: 'qcow2', trust: 'none' });
    return [`${url}: ${description?.format}, ${store.length} bytes`, `${result.target}: ${result.format}, ${result.size} bytes, ${result.dataBytes} bytes of data`];
  } finally {
    // The store is ours: vdisk only borrowed it.
    await store.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, target] = process.argv.slice(2);
  if (!url || !target) throw new Error('usage: http-range-store.js URL TARGET.qcow2');
  console.log((await main(url, target)).join('\n'));
}
