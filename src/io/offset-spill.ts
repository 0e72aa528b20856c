/**
 * Bytes of a forward-only source kept by their offset until a reader
 * learns where they belong (qcow2 data that comes before its L2 table):
 * in memory up to a limit, then in a private temporary file (unlinked at
 * once, so nothing is left behind). Bytes are released as soon as they are
 * used, so the limit bounds what is pending, not what passed through; file
 * space that is released is reused.
 */

import { IoError, PolicyError } from '../core/errors.js';
import type { FileStore } from './file-store.js';
import { privateFile } from './private-file.js';

/** Where and how much an {@link OffsetSpill} may keep. */
export interface OffsetSpillOptions {
  /** Bytes kept in memory before the file is used (default 64 MiB). */
  readonly memory?: number | undefined;
  /** Most bytes pending in all (default 4 GiB); past it `put` fails naming the offset. */
  readonly limit?: number | undefined;
  /** Directory of the file (default the OS temporary directory). */
  readonly dir?: string | undefined;
  /** The source's name, for messages. */
  readonly name?: string | undefined;
}

/** Default bytes kept in memory. */
export const DEFAULT_SPILL_MEMORY = 64 * 1024 * 1024;
/** Default most bytes pending. */
export const DEFAULT_SPILL_LIMIT = 4 * 1024 * 1024 * 1024;

/** A held range: in memory (`mem`) or at `fileAt` in the file. */
interface Piece {
  offset: number;
  length: number;
  mem: Uint8Array | undefined;
  fileAt: number;
}

/** Source bytes kept by offset, put in increasing order, read and released in any order. */
export class OffsetSpill {
  readonly #memory: number;
  readonly #limit: number;
  readonly #dir: string | undefined;
  readonly #name: string | undefined;
  /** Sorted by offset, never overlapping. */
  #pieces: Piece[] = [];
  #end = 0;
  #pending = 0;
  #inMemory = 0;
  #file: FileStore | undefined;
  #fileEnd = 0;
  /** Free file ranges `[start, end)`, sorted, never touching one another. */
  #free: [number, number][] = [];

  constructor(options: OffsetSpillOptions = {}) {
    this.#memory = options.memory ?? DEFAULT_SPILL_MEMORY;
    this.#limit = options.limit ?? DEFAULT_SPILL_LIMIT;
    this.#dir = options.dir;
    this.#name = options.name;
  }

  /** Bytes pending (memory and file). */
  get size(): number {
    return this.#pending;
  }

  /** Bytes of the file in use or free for reuse (its length). */
  get fileBytes(): number {
    return this.#fileEnd;
  }

  /**
   * Keeps `data` as the source's bytes at `offset` (taken over: the caller
   * must not change it). Offsets only grow: `offset` is at or past the end
   * of the last put.
   *
   * @throws {PolicyError} EPOLICY (reason `spill-limit`) when the pending bytes would pass the limit
   */
  async put(offset: number, data: Uint8Array): Promise<void> {
    if (offset < this.#end) throw new IoError(`spill put out of order: offset ${offset} before ${this.#end}`);
    if (data.length === 0) return;
    if (this.#pending + data.length > this.#limit) {
      const where = this.#name === undefined ? '' : ` of '${this.#name}'`;
      throw new PolicyError(`Reading the stream${where} forward would keep more than the spill limit of ${this.#limit} bytes (at offset ${offset})`, {
        reason: 'spill-limit',
        file: this.#name,
        offset,
        data: { limit: this.#limit, pending: this.#pending },
      });
    }
    const piece: Piece = { offset, length: data.length, mem: undefined, fileAt: 0 };
    if (this.#inMemory + data.length <= this.#memory) {
      piece.mem = data;
      this.#inMemory += data.length;
    } else {
      piece.fileAt = this.#allocate(data.length);
      await this.#writeFile(piece.fileAt, data);
    }
    this.#pieces.push(piece);
    this.#pending += data.length;
    this.#end = offset + data.length;
  }

  /** True when every byte of `[offset, offset+length)` is held. */
  holds(offset: number, length: number): boolean {
    let at = offset;
    for (let i = this.#first(offset); i < this.#pieces.length && at < offset + length; i++) {
      const p = this.#pieces[i]!;
      if (p.offset > at) return false;
      at = p.offset + p.length;
    }
    return at >= offset + length;
  }

  /**
   * The bytes of `[offset, offset+length)`, which stay held until released;
   * undefined when some of them are not held.
   */
  async read(offset: number, length: number): Promise<Uint8Array | undefined> {
    if (length === 0) return new Uint8Array(0);
    if (!this.holds(offset, length)) return undefined;
    const i = this.#first(offset);
    const p = this.#pieces[i]!;
    if (p.mem && p.offset + p.length >= offset + length) return p.mem.subarray(offset - p.offset, offset - p.offset + length);
    const out = new Uint8Array(length);
    for (let k = i, at = offset; at < offset + length; k++) {
      const q = this.#pieces[k]!;
      const from = at - q.offset;
      const n = Math.min(q.length - from, offset + length - at);
      if (q.mem) out.set(q.mem.subarray(from, from + n), at - offset);
      else await this.#readFile(q.fileAt + from, out.subarray(at - offset, at - offset + n));
      at += n;
    }
    return out;
  }

  /** Forgets whatever is held of `[offset, offset+length)` (bytes not held are ignored). */
  release(offset: number, length: number): void {
    const end = offset + length;
    const i = this.#first(offset);
    let j = i;
    const kept: Piece[] = [];
    for (; j < this.#pieces.length && this.#pieces[j]!.offset < end; j++) {
      const p = this.#pieces[j]!;
      const a = Math.max(p.offset, offset);
      const b = Math.min(p.offset + p.length, end);
      this.#pending -= b - a;
      if (p.mem) this.#inMemory -= b - a;
      else this.#addFree(p.fileAt + (a - p.offset), p.fileAt + (b - p.offset));
      if (p.offset < a) kept.push(remnant(p, p.offset, a));
      if (b < p.offset + p.length) kept.push(remnant(p, b, p.offset + p.length));
    }
    if (j > i) this.#pieces.splice(i, j - i, ...kept);
  }

  /** Frees the memory and closes the file. */
  async close(): Promise<void> {
    this.#pieces = [];
    this.#pending = 0;
    this.#inMemory = 0;
    const f = this.#file;
    this.#file = undefined;
    await f?.close();
  }

  /** Index of the first piece ending after `offset`. */
  #first(offset: number): number {
    let lo = 0;
    let hi = this.#pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.#pieces[mid]!;
      if (p.offset + p.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** File space for `n` bytes: the first free range that fits, else the end. */
  #allocate(n: number): number {
    const i = this.#free.findIndex(([s, e]) => e - s >= n);
    if (i < 0) {
      const at = this.#fileEnd;
      this.#fileEnd += n;
      return at;
    }
    const range = this.#free[i]!;
    const at = range[0];
    if (range[1] - at === n) this.#free.splice(i, 1);
    else range[0] += n;
    return at;
  }

  #addFree(start: number, end: number): void {
    const free = this.#free;
    let i = 0;
    while (i < free.length && free[i]![0] < start) i++;
    free.splice(i, 0, [start, end]);
    // Merge with the neighbours, then give a free tail back to the end of the file.
    if (i + 1 < free.length && free[i]![1] === free[i + 1]![0]) free.splice(i, 2, [start, free[i + 1]![1]]);
    if (i > 0 && free[i - 1]![1] === free[i]![0]) free.splice(i - 1, 2, [free[i - 1]![0], free[i]![1]]);
    const last = free[free.length - 1];
    if (last && last[1] === this.#fileEnd) {
      this.#fileEnd = last[0];
      free.pop();
    }
  }

  async #writeFile(at: number, data: Uint8Array): Promise<void> {
    const file = this.#file ?? (this.#file = await privateFile(this.#dir, 'vdisk-spill', 'spill'));
    await file.write(at, data);
  }

  async #readFile(at: number, into: Uint8Array): Promise<void> {
    if (!this.#file) throw new IoError('spill read before any write');
    if ((await this.#file.read(at, into)) !== into.length) throw new IoError('spill file ended early');
  }
}

/** The part `[from, to)` of `p` as a piece of its own. */
function remnant(p: Piece, from: number, to: number): Piece {
  if (!p.mem) return { offset: from, length: to - from, mem: undefined, fileAt: p.fileAt + (from - p.offset) };
  const part = p.mem.subarray(from - p.offset, to - p.offset);
  // A small remnant of a large buffer is copied (new Uint8Array: a Buffer's slice() would keep all of it), so memory stays near what is pending.
  return { offset: from, length: to - from, mem: part.buffer.byteLength > 2 * part.length ? new Uint8Array(part) : part, fileAt: 0 };
}
