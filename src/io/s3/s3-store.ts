/**
 * An S3 object as a read-only ByteStore: the size and ETag from one HEAD,
 * then ranged GETs sent with `If-Match` on that ETag, so a replaced object
 * fails the read (naming it) instead of mixing two objects' bytes.
 */
import { IoError, PermissionError, type VdiskError } from '../../core/errors.js';
import type { ByteStore } from '../byte-store.js';
import type { NetworkOptions } from '../network-options.js';
import { closeOnFailure, ReadOnlyStore } from '../read-only-store.js';
import { S3Client } from './client.js';
import { loadS3Config } from './config.js';
import { parseS3Name } from './url.js';

/** Largest single GET; longer reads are split and sent concurrently. */
const MAX_GET = 16 * 1024 * 1024;

/** A read-only S3 object. Open it with {@link S3Store.open} or `open('s3://bucket/key')`. */
export class S3Store extends ReadOnlyStore {
  /** `s3://bucket/key`. */
  readonly name: string;
  readonly #client: S3Client;
  readonly #etag: string | undefined;

  private constructor(client: S3Client, size: number, etag: string | undefined) {
    super(size);
    this.#client = client;
    this.name = client.location.name;
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
    return closeOnFailure(client, async () => {
      // The image open prefixes `Could not open 'name': `.
      const res = await client.request({ method: 'HEAD', maxBody: 0, what: '' });
      const length = Number(res.headers['content-length']);
      if (!Number.isSafeInteger(length) || length < 0) throw new IoError(`no valid Content-Length for '${location.name}'`, { file: location.name });
      const etag = res.headers['etag'];
      return new S3Store(client, length, typeof etag === 'string' && etag !== '' ? etag : undefined);
    });
  }

  /** Ranged GETs of at most 16 MiB, sent concurrently (the client bounds how many are in flight). */
  protected async fetch(offset: number, into: Uint8Array): Promise<void> {
    const parts: Promise<void>[] = [];
    for (let at = 0; at < into.length; at += MAX_GET) {
      const part = into.subarray(at, Math.min(into.length, at + MAX_GET));
      parts.push(this.#client.getRange(offset + at, offset + at + part.length, this.objectSize, this.#etag, (chunk, pos) => part.set(chunk, pos)));
    }
    await Promise.all(parts);
  }

  /** S3 objects are written whole, by convert's upload. */
  protected override readOnlyError(): VdiskError {
    return new PermissionError(`'${this.name}' is read-only: S3 objects are written by convert`, { file: this.name });
  }

  protected override release(): void {
    this.#client.close();
  }
}

/** The `s3://` opener of block/network-stores.ts (read-only: an S3 target is written by convert's upload). */
export async function openS3Store(name: string, options: NetworkOptions & { readonly readOnly: boolean }): Promise<ByteStore> {
  if (!options.readOnly) throw new PermissionError(`Could not open '${parseS3Name(name).name}' for writing: S3 objects are written whole by convert`, { file: name });
  return S3Store.open(name, options);
}
