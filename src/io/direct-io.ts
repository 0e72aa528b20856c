/**
 * Direct I/O (O_DIRECT) for FileStore: every read and write goes through
 * aligned bounce buffers, so callers keep passing any Uint8Array at any
 * offset. Unaligned heads and tails are read-modify-written a block at a
 * time, the file's logical size stays exact (a write of a partial last block
 * is truncated back), and concurrent requests stay correct: RMW of one block
 * is serialized, and writes that may move the end of the file are ordered by
 * one size lock so a truncate-back never cuts off another write's data.
 */
import { AsyncMutex } from '../core/mutex.js';
import { fsError } from './errno.js';

/** Positional file operations DirectIo runs on (an FdHandle's, in FileStore). */
export interface DirectFile {
  /** pread: resolves to the bytes read (short at end of file). */
  read(buffer: Uint8Array, length: number, position: number): Promise<number>;
  /** pwrite: resolves to the bytes written. */
  write(buffer: Uint8Array, length: number, position: number): Promise<number>;
  /** ftruncate. */
  truncate(size: number): Promise<void>;
  /** fstat's size. */
  size(): Promise<number>;
}

/** Largest bounce buffer (one request is split into chunks of at most this). */
export const MAX_BOUNCE = 4 * 1024 * 1024;
/** Alignment used when the file system does not report its own (and the memory alignment always). */
export const DEFAULT_DIRECT_ALIGNMENT = 4096;
const FREE_PER_SIZE = 8;

/**
 * Reusable aligned buffers in power-of-two sizes (alignment .. MAX_BOUNCE),
 * at most FREE_PER_SIZE idle per size, shared by every direct store.
 */
export class BouncePool {
  readonly #alloc: (size: number) => Uint8Array;
  readonly #free = new Map<number, Uint8Array[]>();

  constructor(alloc: (size: number) => Uint8Array) {
    this.#alloc = alloc;
  }

  /** A buffer of at least `size` bytes (≤ MAX_BOUNCE), aligned at its start. */
  take(size: number): Uint8Array {
    let cls = DEFAULT_DIRECT_ALIGNMENT;
    while (cls < size) cls *= 2;
    const list = this.#free.get(cls);
    return list?.pop() ?? this.#alloc(cls);
  }

  /** Returns a buffer from {@link take}. */
  give(buf: Uint8Array): void {
    let list = this.#free.get(buf.length);
    if (!list) this.#free.set(buf.length, (list = []));
    if (list.length < FREE_PER_SIZE) list.push(buf);
  }
}

/** Direct I/O over one file descriptor opened with O_DIRECT. */
export class DirectIo {
  readonly #file: DirectFile;
  readonly #name: string;
  readonly #align: number;
  readonly #pool: BouncePool;
  readonly #sizeLock = new AsyncMutex();
  readonly #blockTails = new Map<number, Promise<void>>();
  #size: number;

  /**
   * @param align offset/length alignment: a power of two, 512 .. MAX_BOUNCE
   * @param size the file's current size; undefined for a device, whose size never changes (nothing is truncated)
   */
  constructor(file: DirectFile, name: string, align: number, size: number | undefined, pool: BouncePool) {
    this.#file = file;
    this.#name = name;
    this.#align = align;
    this.#size = size ?? Number.POSITIVE_INFINITY;
    this.#pool = pool;
  }

  /** The alignment in use. */
  get alignment(): number {
    return this.#align;
  }

  /** The logical size (exact even while a write of a partial last block is in flight); infinite for a device. */
  get size(): number {
    return this.#size;
  }

  /** Fills `into` from `offset`; bytes past the end read as zeros. Returns the bytes that came from the file. */
  async read(offset: number, into: Uint8Array): Promise<number> {
    const end = offset + into.length;
    if (into.length === 0) return 0;
    const a0 = this.#down(offset);
    const a1 = this.#up(end);
    let dataEnd = a0;
    for (let cs = a0; cs < a1; cs += MAX_BOUNCE) {
      const ce = Math.min(a1, cs + MAX_BOUNCE);
      const buf = this.#pool.take(ce - cs);
      try {
        const n = await this.#readAligned(buf, ce - cs, cs);
        if (n < ce - cs) buf.fill(0, n, ce - cs);
        const from = Math.max(offset, cs);
        const to = Math.min(end, ce);
        into.set(buf.subarray(from - cs, to - cs), from - offset);
        dataEnd = cs + n;
        if (n < ce - cs) {
          into.fill(0, to - offset);
          break;
        }
      } finally {
        this.#pool.give(buf);
      }
    }
    return Math.max(0, Math.min(end, dataEnd, this.#size) - offset);
  }

  /** Writes all of `data` at `offset`, growing the file to exactly `offset + data.length` if it was shorter. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    const end = offset + data.length;
    const a0 = this.#down(offset);
    const a1 = this.#up(end);
    // Writes whose aligned end passes the logical end may leave the file longer than it should be:
    // they run one at a time under the size lock and truncate back before releasing it.
    const releaseSize = a1 > this.#size ? await this.#sizeLock.lock() : undefined;
    const edges = [...new Set([offset !== a0 ? a0 : -1, end !== a1 ? a1 - this.#align : -1])].filter((b) => b >= 0);
    const releases: (() => void)[] = [];
    try {
      for (const b of edges.sort((x, y) => x - y)) releases.push(await this.#lockBlock(b));
      for (let cs = a0; cs < a1; cs += MAX_BOUNCE) {
        await this.#writeChunk(cs, Math.min(a1, cs + MAX_BOUNCE), offset, data);
      }
      if (releaseSize) {
        const size = Math.max(this.#size, end);
        if (a1 > size) await this.#truncate(size);
        this.#size = size;
      }
    } finally {
      for (const release of releases) release();
      releaseSize?.();
    }
  }

  /** ftruncate, ordered with writes that move the end of the file. */
  async truncate(size: number): Promise<void> {
    await this.#sizeLock.run(async () => {
      await this.#truncate(size);
      this.#size = size;
    });
  }

  /** Runs `fn` (fallocate and the like) holding the size lock, then re-reads the size from the file. */
  async resizing<T>(fn: () => Promise<T>): Promise<T> {
    return this.#sizeLock.run(async () => {
      try {
        return await fn();
      } finally {
        if (this.#size !== Number.POSITIVE_INFINITY) this.#size = await this.#file.size();
      }
    });
  }

  async #writeChunk(cs: number, ce: number, offset: number, data: Uint8Array): Promise<void> {
    const len = ce - cs;
    const end = offset + data.length;
    const buf = this.#pool.take(len);
    try {
      // Edge blocks only partly covered by the request keep their other bytes (read-modify-write).
      const headBlock = offset > cs ? cs : -1;
      const tailBlock = end < ce ? ce - this.#align : -1;
      if (headBlock >= 0) await this.#readBlock(buf, 0, headBlock);
      if (tailBlock >= 0 && tailBlock !== headBlock) await this.#readBlock(buf, tailBlock - cs, tailBlock);
      const from = Math.max(offset, cs);
      const to = Math.min(end, ce);
      buf.set(data.subarray(from - offset, to - offset), from - cs);
      let done = 0;
      while (done < len) {
        let n: number;
        try {
          n = await this.#file.write(done === 0 ? buf : buf.subarray(done), len - done, cs + done);
        } catch (err) {
          throw fsError(err, `Could not write '${this.#name}' at offset ${Math.max(offset, cs + done)}`, this.#name);
        }
        if (n <= 0) throw fsError(Object.assign(new Error('short write'), { code: 'EIO' }), `Could not write '${this.#name}' at offset ${cs + done}`, this.#name);
        done += n;
      }
    } finally {
      this.#pool.give(buf);
    }
  }

  /** One aligned block into `buf` at `at`; past the end of the file it reads as zeros. */
  async #readBlock(buf: Uint8Array, at: number, block: number): Promise<void> {
    const view = buf.subarray(at, at + this.#align);
    const n = await this.#readAligned(view, this.#align, block);
    if (n < this.#align) view.fill(0, n);
  }

  /** pread of an aligned range; stops at the end of the file. */
  async #readAligned(buf: Uint8Array, len: number, pos: number): Promise<number> {
    let got = 0;
    while (got < len) {
      let n: number;
      try {
        n = await this.#file.read(got === 0 ? buf : buf.subarray(got), len - got, pos + got);
      } catch (err) {
        throw fsError(err, `Could not read '${this.#name}' at offset ${pos + got}`, this.#name);
      }
      got += n;
      // A short read ends at the end of the file (further direct reads would be unaligned anyway).
      if (n === 0 || got % this.#align !== 0) break;
    }
    return got;
  }

  async #truncate(size: number): Promise<void> {
    try {
      await this.#file.truncate(size);
    } catch (err) {
      throw fsError(err, `Could not resize '${this.#name}'`, this.#name);
    }
  }

  /** Waits for the block's lock (FIFO per block); returns its release. */
  async #lockBlock(block: number): Promise<() => void> {
    const prev = this.#blockTails.get(block) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.#blockTails.set(block, tail);
    await prev;
    return () => {
      release();
      if (this.#blockTails.get(block) === tail) this.#blockTails.delete(block);
    };
  }

  #down(n: number): number {
    return n - (n % this.#align);
  }

  #up(n: number): number {
    const r = n % this.#align;
    return r === 0 ? n : n + this.#align - r;
  }
}
