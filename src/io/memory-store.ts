import { InvalidArgumentError, IoError } from '../core/errors.js';
import type { ByteStore } from './byte-store.js';

/** Largest memory store, so a hostile size cannot exhaust the heap. */
const MAX_MEMORY_STORE = 2 ** 31;

/**
 * A growable in-memory ByteStore, for tests, examples and scratch overlays.
 *
 * @example
 * ```ts
 * const store = new MemoryStore('scratch');
 * await store.write(0, new Uint8Array([1, 2, 3]));
 * ```
 */
export class MemoryStore implements ByteStore {
  readonly name: string;
  readonly readOnly: boolean;
  #buf: Uint8Array;
  #size: number;
  #closed = false;

  constructor(name = 'memory', initial?: Uint8Array, options: { readOnly?: boolean } = {}) {
    this.name = name;
    this.readOnly = options.readOnly ?? false;
    this.#buf = initial ? new Uint8Array(initial) : new Uint8Array(0);
    this.#size = this.#buf.length;
  }

  /** A copy of the current contents. */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#size);
  }

  async size(): Promise<number> {
    this.#check();
    return this.#size;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#check();
    const n = Math.max(0, Math.min(into.length, this.#size - offset));
    if (n > 0) into.set(this.#buf.subarray(offset, offset + n));
    into.fill(0, n);
    return n;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#checkWritable();
    this.#ensure(offset + data.length);
    this.#buf.set(data, offset);
    this.#size = Math.max(this.#size, offset + data.length);
  }

  async truncate(size: number): Promise<void> {
    this.#checkWritable();
    this.#ensure(size);
    if (size < this.#size) this.#buf.fill(0, size, this.#size);
    this.#size = size;
  }

  async flush(): Promise<void> {
    this.#check();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async allocatedSize(): Promise<number> {
    return this.#size;
  }

  #ensure(size: number): void {
    if (size > MAX_MEMORY_STORE) throw new InvalidArgumentError(`Memory store '${this.name}' cannot grow to ${size} bytes`);
    if (size <= this.#buf.length) return;
    const next = new Uint8Array(Math.min(MAX_MEMORY_STORE, Math.max(size, this.#buf.length * 2, 4096)));
    next.set(this.#buf.subarray(0, this.#size));
    this.#buf = next;
  }

  #check(): void {
    if (this.#closed) throw new IoError(`Memory store '${this.name}' is closed`);
  }

  #checkWritable(): void {
    this.#check();
    if (this.readOnly) throw new IoError(`Memory store '${this.name}' is read-only`);
  }
}
