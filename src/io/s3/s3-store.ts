/**
 * An S3 object as a read-only ByteStore: the size and ETag from one HEAD,
 * then ranged GETs sent with `If-Match` on that ETag, so a replaced object
 * fails the read (naming it) instead of mixing two objects' bytes.
 */
import { IoError, PermissionError } from '../../core/errors.js';
import type { ByteStore } from '../byte-store.js';
import type { NetworkOptions } from '../network-options.js';
import { S3Client } from './client.js';
import { loadS3Config } from './config.js';
import { parseS3Name } from './url.js';

/** Largest single GET; longer reads are split and sent concurrently. */
const MAX_GET = 16 * 1024 * 1024;

/** A read-only S3 object. Open it with {@link S3Store.open} or `open('s3://bucket/key')`. */
export class S3Store implements ByteStore {
  /** `s3://bucket/key`. */
  readonly name: string;
  /** Always true: S3 objects are written whole, by convert's upload. */
  readonly readOnly = true;
  readonly #client: S3Client;
  readonly #size: number;
  readonly #etag: string | undefined;
  #closed = false;

  private constructor(client: S3Client, size: number, etag: string | undefined) {
    this.#client = client;
    this.name = client.location.name;
    this.#size = size;
    this.#etag = etag;
  }

  /**
   * Opens `s3://bucket/key` with the endpoint, region and credentials of
   * the AWS environment (see loadS3Config).
   *
   * @throws {NotFoundError} ENOENT when the bucket or object does not exist
   * @throws {PermissionError} EPERM when the credentials are refused
   * @throws {IoError} EIO when the service fails past the retries
   */
  static async open(url: string, network: NetworkOptions = {}): Promise<S3Store> {
    const location = parseS3Name(url);
    const client = new S3Client(await loadS3Config(), location, network);
    // The image open prefixes `Could not open 'name': `.
    const res = await client.request({ method: 'HEAD', maxBody: 0, what: '' });
    const length = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0) throw new IoError(`no valid Content-Length for '${location.name}'`, { file: location.name });
    const etag = res.headers['etag'];
    return new S3Store(client, length, typeof etag === 'string' && etag !== '' ? etag : undefined);
  }

  size(): Promise<number> {
    return Promise.resolve(this.#size);
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    if (this.#closed) throw new IoError(`'${this.name}' is closed`, { file: this.name });
    const n = Math.max(0, Math.min(into.length, this.#size - offset));
    into.fill(0, n);
    const parts: Promise<void>[] = [];
    for (let at = 0; at < n; at += MAX_GET) parts.push(this.#get(offset + at, into.subarray(at, Math.min(n, at + MAX_GET))));
    await Promise.all(parts);
    return n;
  }

  /** One ranged GET, its Content-Range, length and ETag checked. */
  async #get(offset: number, into: Uint8Array): Promise<void> {
    const last = offset + into.length - 1;
    const what = `Could not read bytes ${offset}-${last} of`;
    const headers: Record<string, string> = { range: `bytes=${offset}-${last}` };
    if (this.#etag !== undefined) headers['if-match'] = this.#etag;
    const res = await this.#client.request({ method: 'GET', headers, maxBody: into.length, what });
    const etag = res.headers['etag'];
    // Servers that ignore If-Match still name the version they sent.
    if (this.#etag !== undefined && typeof etag === 'string' && etag !== this.#etag) {
      throw new IoError(`${what} '${this.name}': the object changed while it was read (ETag ${this.#etag} became ${etag})`, { file: this.name });
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    const whole = res.status === 200 && offset === 0 && into.length === this.#size;
    const exact = range !== null && Number(range[1]) === offset && Number(range[2]) === last && (range[3] === '*' || Number(range[3]) === this.#size);
    if ((!whole && !exact) || res.body.length !== into.length) {
      throw new IoError(`${what} '${this.name}': the answer does not match the range asked (HTTP ${res.status}, Content-Range ${String(res.headers['content-range'])}, ${res.body.length} bytes)`, { file: this.name });
    }
    into.set(res.body);
  }

  write(): Promise<void> {
    return Promise.reject(new PermissionError(`'${this.name}' is read-only: S3 objects are written by convert`, { file: this.name }));
  }

  truncate(): Promise<void> {
    return this.write();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/** The `s3://` opener of block/network-stores.ts (read-only: an S3 target is written by convert's upload). */
export async function openS3Store(name: string, options: NetworkOptions & { readonly readOnly: boolean }): Promise<ByteStore> {
  if (!options.readOnly) throw new PermissionError(`Could not open '${parseS3Name(name).name}' for writing: S3 objects are written whole by convert`, { file: name });
  return S3Store.open(name, options);
}
