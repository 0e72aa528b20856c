/**
 * Bytes kept between two passes over a source, in the order they were
 * made: in memory up to a limit, then in a private temporary file
 * (unlinked at once, so nothing is left behind if the process dies).
 * Read back once, front to back.
 */
import { IoError, PolicyError } from '../core/errors.js';
import type { ByteStore } from '../io/byte-store.js';
import { privateFile } from '../io/private-file.js';

/** Where and how much an {@link AppendSpill} may keep. */
export interface AppendSpillOptions {
  /** Bytes kept in memory before the file is used. */
  readonly memory: number;
  /** Most bytes kept in all; past it `append` fails. */
  readonly limit: number;
  /** Directory of the file (default the OS temporary directory). */
  readonly dir?: string | undefined;
}

/** An append-only spill read back in order. */
export class AppendSpill {
  readonly #options: AppendSpillOptions;
  readonly #chunks: Uint8Array[] = [];
  #inMemory = 0;
  #file: ByteStore | undefined;
  #fileBytes = 0;

  constructor(options: AppendSpillOptions) {
    this.#options = options;
  }

  /** Bytes kept so far. */
  get size(): number {
    return this.#inMemory + this.#fileBytes;
  }

  /** Bytes that went to the file. */
  get fileBytes(): number {
    return this.#fileBytes;
  }

  /** Keeps `data` (taken over: the caller must not change it afterwards). */
  async append(data: Uint8Array): Promise<void> {
    if (this.size + data.length > this.#options.limit) {
      throw new PolicyError(`The spill would exceed its limit of ${this.#options.limit} bytes`, { reason: 'spill-limit' });
    }
    if (this.#file === undefined && this.#inMemory + data.length <= this.#options.memory) {
      this.#chunks.push(data);
      this.#inMemory += data.length;
      return;
    }
    const file = this.#file ?? (this.#file = await privateFile(this.#options.dir, 'vdisk-spill', 'spill'));
    await file.write(this.#fileBytes, data);
    this.#fileBytes += data.length;
  }

  /** Reads `lengths[i]` bytes for each entry, in order, from the front. */
  async *read(lengths: Iterable<number>): AsyncGenerator<Uint8Array> {
    let chunk = 0;
    let filePos = 0;
    for (const n of lengths) {
      if (chunk < this.#chunks.length) {
        const c = this.#chunks[chunk++]!;
        if (c.length !== n) throw new IoError(`spill out of step: ${c.length} bytes kept, ${n} asked`);
        yield c;
        continue;
      }
      if (this.#file === undefined) throw new IoError('spill read past its end');
      const buf = new Uint8Array(n);
      if ((await this.#file.read(filePos, buf)) !== n) throw new IoError('spill file ended early');
      filePos += n;
      yield buf;
    }
  }

  /** Frees the memory and closes the file. */
  async close(): Promise<void> {
    this.#chunks.length = 0;
    this.#inMemory = 0;
    const f = this.#file;
    this.#file = undefined;
    await f?.close();
  }
}
