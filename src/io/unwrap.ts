/**
 * Gzip- and zip-wrapped images (`disk.img.gz`, an appliance `.zip` holding
 * one image), as cloud images are often shipped. The wrapped image is
 * inflated once, as a sparse file, so every format driver can then read it
 * with random access.
 */
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

import type { UnzipFile } from 'fflate';

import { throwIfAborted } from '../core/abort.js';
import { CorruptImageError, UnsupportedError } from '../core/errors.js';
import { isZero } from '../core/bytes.js';
import { fsName } from '../core/byte-names.js';
import { fsError } from './errno.js';
import { open } from './fs-names.js';

/** The wrapper a file has, judged by its first bytes. */
export type Wrapper = 'gzip' | 'zip';

/** Detects a gzip or zip wrapper from the first bytes of a file. */
export function detectWrapper(head: Uint8Array): Wrapper | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  return undefined;
}

const BLOCK = 64 * 1024;

/** Writes a stream of chunks into `fh` sparsely: all-zero 4 KiB blocks are skipped. */
class SparseWriter {
  #pos = 0;
  constructor(private readonly fh: FileHandle) {}
  async push(chunk: Uint8Array): Promise<void> {
    for (let off = 0; off < chunk.length; off += 4096) {
      const block = chunk.subarray(off, Math.min(chunk.length, off + 4096));
      if (!isZero(block)) await this.fh.write(block, 0, block.length, this.#pos + off);
    }
    this.#pos += chunk.length;
  }
  async end(): Promise<number> {
    await this.fh.truncate(this.#pos);
    return this.#pos;
  }
}

async function gunzipTo(source: string, out: SparseWriter, signal: AbortSignal | undefined): Promise<void> {
  const input = createReadStream(fsName(source), { highWaterMark: BLOCK });
  const gunzip = input.pipe(createGunzip());
  try {
    for await (const chunk of gunzip) {
      throwIfAborted(signal);
      await out.push(chunk as Buffer);
    }
  } catch (err) {
    input.destroy();
    if (err instanceof Error && 'errno' in err && !('syscall' in err)) throw new CorruptImageError(`Could not decompress '${source}': ${err.message}`, { file: source, cause: err });
    throw err;
  }
}

async function unzipTo(source: string, out: SparseWriter, signal: AbortSignal | undefined): Promise<void> {
  // Loaded on first use: fflate builds its tables at import, which every CLI start would pay.
  const { Unzip, UnzipInflate } = await import('fflate');
  const files: UnzipFile[] = [];
  const chunks: Uint8Array[] = [];
  let failure: unknown;
  const unzip = new Unzip((file) => {
    if (file.name.endsWith('/')) return;
    files.push(file);
    if (files.length > 1) {
      failure = new UnsupportedError(`'${source}' holds more than one file; extract the image first`, { file: source });
      return;
    }
    file.ondata = (err, data) => {
      if (err) failure = new CorruptImageError(`Could not decompress '${source}': ${err.message}`, { file: source });
      else chunks.push(data);
    };
    file.start();
  });
  unzip.register(UnzipInflate);
  const input = createReadStream(fsName(source), { highWaterMark: BLOCK });
  for await (const chunk of input) {
    throwIfAborted(signal);
    unzip.push(chunk as Buffer);
    if (failure) break;
    for (const c of chunks.splice(0)) await out.push(c);
  }
  unzip.push(new Uint8Array(0), true);
  if (failure) throw failure;
  for (const c of chunks.splice(0)) await out.push(c);
  if (files.length === 0) throw new CorruptImageError(`'${source}' holds no file`, { file: source });
}

/**
 * Inflates the image wrapped in `source` into `target` (created, sparse).
 * Returns the inflated size.
 */
export async function unwrapTo(source: string, wrapper: Wrapper, target: string, signal?: AbortSignal): Promise<number> {
  let fh: FileHandle;
  try {
    fh = await open(target, 'wx', 0o600);
  } catch (err) {
    throw fsError(err, `Could not create '${target}'`, target);
  }
  try {
    const out = new SparseWriter(fh);
    if (wrapper === 'gzip') await gunzipTo(source, out, signal);
    else await unzipTo(source, out, signal);
    return await out.end();
  } finally {
    await fh.close();
  }
}
