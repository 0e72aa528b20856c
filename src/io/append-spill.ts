/**
 * Bytes kept between two passes over a source, in the order they were
 * made: in memory up to a limit, then in a private temporary file
 * (unlinked at once, so nothing is left behind if the process dies).
 * Read back once, front to back.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { IoError, PolicyError } from '../core/errors.js';
import { fsError } from './errno.js';

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
  #file: FileHandle | undefined;
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
    const file = this.#file ?? (this.#file = await privateFile(this.#options.dir));
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await file.write(data, done, data.length - done, this.#fileBytes + done);
      done += bytesWritten;
    }
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
      let got = 0;
      while (got < n) {
        const { bytesRead } = await this.#file.read(buf, got, n - got, filePos + got);
        if (bytesRead === 0) throw new IoError('spill file ended early');
        got += bytesRead;
      }
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

/** A private file (0600, in a fresh 0700 directory removed at once) nobody else can open and nothing leaves behind. */
export async function privateFile(dir: string | undefined): Promise<FileHandle> {
  const base = dir ?? tmpdir();
  let d: string;
  try {
    d = await mkdtemp(join(base, 'vdisk-spill-'));
  } catch (err) {
    throw fsError(err, `Could not create a temporary directory in '${base}'`, base);
  }
  try {
    return await open(join(d, 'spill'), 'w+', 0o600);
  } catch (err) {
    throw fsError(err, `Could not create a spill file in '${base}'`, base);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}
