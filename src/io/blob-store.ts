/**
 * A read-only ByteStore over a `Blob` (a browser `File` an upload form
 * holds, or a Node `Blob`): `inspect` and `validate` judge an image before
 * a byte of it is uploaded. Reads slice the blob, so nothing is loaded
 * whole. Works wherever `Blob` does (browsers, Node ≥ 18).
 */
import { UnsupportedError, type VdiskError } from '../core/errors.js';
import { ReadOnlyStore } from './read-only-store.js';

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
export class BlobStore extends ReadOnlyStore {
  /**
   * @param blob - the bytes (a `File` from an `<input type=file>`, a `Blob`)
   * @param name - a name for messages (default: the File's name, else `blob`)
   */
  constructor(
    readonly blob: BlobLike,
    readonly name: string = (blob as { name?: string }).name ?? 'blob',
  ) {
    // A Blob's bytes never change.
    super(blob.size);
  }

  protected async fetch(offset: number, into: Uint8Array): Promise<void> {
    into.set(new Uint8Array(await this.blob.slice(offset, offset + into.length).arrayBuffer()));
  }

  protected override readOnlyError(): VdiskError {
    return new UnsupportedError(`'${this.name}' is read-only (a Blob)`, { file: this.name });
  }
}
