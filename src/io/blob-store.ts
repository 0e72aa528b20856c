/**
 * A read-only ByteStore over a `Blob` (a browser `File` an upload form
 * holds, or a Node `Blob`): `inspect` and `validate` judge an image before
 * a byte of it is uploaded. Reads slice the blob, so nothing is loaded
 * whole. Works wherever `Blob` does (browsers, Node ≥ 18).
 */
import { UnsupportedError } from '../core/errors.js';
import type { ByteStore } from './byte-store.js';

/** The part of `Blob` a BlobStore uses (a browser `File`, Node's `Blob`). */
export interface BlobLike {
  /** Bytes in the blob. */
  readonly size: number;
  /** The bytes `[start, end)` as a smaller blob. */
  slice(start?: number, end?: number): BlobSlice;
}

/** What {@link BlobLike.slice} returns. */
export interface BlobSlice {
  /** Its bytes. */
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** A read-only store over a Blob or File. */
export class BlobStore implements ByteStore {
  readonly readOnly = true;
  #closed = false;

  /**
   * @param blob - the bytes (a `File` from an `<input type=file>`, a `Blob`)
   * @param name - a name for messages (default: the File's name, else `blob`)
   */
  constructor(
    readonly blob: BlobLike,
    readonly name: string = (blob as { name?: string }).name ?? 'blob',
  ) {}

  async size(): Promise<number> {
    this.#open();
    return this.blob.size;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#open();
    const end = Math.min(this.blob.size, offset + into.length);
    const n = Math.max(0, end - offset);
    if (n > 0) into.set(new Uint8Array(await this.blob.slice(offset, end).arrayBuffer()));
    if (n < into.length) into.fill(0, n);
    return n;
  }

  async write(): Promise<void> {
    throw new UnsupportedError(`'${this.name}' is read-only (a Blob)`, { file: this.name });
  }

  async truncate(): Promise<void> {
    throw new UnsupportedError(`'${this.name}' is read-only (a Blob)`, { file: this.name });
  }

  async flush(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new UnsupportedError(`'${this.name}' is closed`, { file: this.name });
  }
}
