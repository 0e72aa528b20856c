/**
 * What the read-only object stores (HTTP(S), S3, a browser Blob) share:
 * reads clamped to the object (bytes past its end read as zeros and are
 * never asked for), writes refused, a closed store refused. Free of Node
 * built-ins: the browser bundle carries it with BlobStore.
 */
import { IoError, UnsupportedError, type VdiskError } from '../core/errors.js';
import type { ByteStore } from './byte-store.js';

/** A ByteStore over an object that is only read; subclasses fetch bytes that lie inside it. */
export abstract class ReadOnlyStore implements ByteStore {
  /** The name messages show. */
  abstract readonly name: string;
  /** Always true. */
  readonly readOnly = true;
  /** The object's size in bytes, fixed at open. */
  protected readonly objectSize: number;
  #closed = false;

  constructor(objectSize: number) {
    this.objectSize = objectSize;
  }

  /** Fills `into` (not empty) with the object's bytes from `offset`; the range lies inside the object. */
  protected abstract fetch(offset: number, into: Uint8Array): Promise<void>;

  /** Frees what the store holds (connections); called once, by the first close. */
  protected release(): void {}

  /** The error a write or truncate gets. */
  protected readOnlyError(): VdiskError {
    return new UnsupportedError(`'${this.name}' is read-only`, { file: this.name });
  }

  /** The object's size. */
  async size(): Promise<number> {
    this.checkOpen();
    return this.objectSize;
  }

  /** Reads what lies inside the object; bytes past its end read as zeros. */
  async read(offset: number, into: Uint8Array): Promise<number> {
    this.checkOpen();
    const n = Math.max(0, Math.min(into.length, this.objectSize - offset));
    into.fill(0, n);
    if (n > 0) await this.fetch(offset, into.subarray(0, n));
    return n;
  }

  /** Refused: the object is read-only. */
  async write(_offset: number, _data: Uint8Array): Promise<void> {
    throw this.readOnlyError();
  }

  /** Refused: the object is read-only. */
  async truncate(_size: number): Promise<void> {
    throw this.readOnlyError();
  }

  /** Nothing to flush (read-only). */
  async flush(): Promise<void> {
    this.checkOpen();
  }

  /** Closes the store (and whatever {@link release} frees). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
  }

  /** Throws once the store is closed. */
  protected checkOpen(): void {
    if (this.#closed) throw new IoError(`'${this.name}' is closed`, { file: this.name });
  }
}

/** Runs `open`; when it fails, closes `client` (its pooled connections) and passes the error on. */
export async function closeOnFailure<T>(client: { close(): void }, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    client.close();
    throw err;
  }
}
