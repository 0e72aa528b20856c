/**
 * Compressed and zipped images (`disk.img.gz`, `disk.qcow2.zst`,
 * `disk.raw.bz2`, an appliance `.zip` holding one image), as cloud images
 * are often shipped: the decoders. zstd and bzip2 are decoded by the
 * stream decoders (io/unwrap-stream.ts), whose frames and blocks are bounded. They read
 * the wrapped bytes from a ByteStore and write the image sparsely into
 * another, stopping as soon as the output passes its cap, so a small bomb
 * costs at most the cap. Where the output lives is the block layer's
 * choice (block/unwrap.ts).
 */
import type { Readable, Writable } from 'node:stream';

import { CorruptImageError, PolicyError, VdiskError } from '../core/errors.js';
import { stream as nodeStream, streamPromises, zlib } from '../core/lazy-builtins.js';
import { scanRun } from '../core/bytes.js';
import { crc32 } from '../core/crc32.js';
import type { ByteStore } from './byte-store.js';
import { readZipEntry } from './zip.js';
import { StreamSource } from './forward-source.js';
import { DEFAULT_SPILL_MEMORY } from './offset-spill.js';
import { detectStreamWrapper, unwrapStream } from './unwrap-stream.js';

/** The wrapper a file has, judged by its first bytes. */
export type Wrapper = 'gzip' | 'zip' | 'zstd' | 'bzip2';

/** Detects a gzip, zip, zstd or bzip2 wrapper from the first 4 bytes of a file. */
export function detectWrapper(head: Uint8Array): Wrapper | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  const type = detectStreamWrapper(head);
  return type === 'zstd' || type === 'bzip2' ? type : undefined;
}

/** What inflating found. */
export interface InflateResult {
  /** Bytes of the inflated image. */
  readonly size: number;
  /** The archive entry taken (zip, or a tar inside a zstd or bzip2 stream). */
  readonly entry?: string | undefined;
}

/** How to inflate. */
export interface InflateOptions {
  /** Most bytes the output may reach; passing it stops the inflation with EPOLICY. */
  readonly maxSize: number;
  readonly signal?: AbortSignal | undefined;
}

const READ_CHUNK = 1024 * 1024;
const SPARSE_BLOCK = 4096;

/** The wrapped bytes `[start, end)` of `store`, in chunks. */
async function* chunksOf(store: ByteStore, start: number, end: number, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  for (let pos = start; pos < end; pos += READ_CHUNK) {
    signal?.throwIfAborted();
    const b = new Uint8Array(Math.min(READ_CHUNK, end - pos));
    await store.read(pos, b);
    yield b;
  }
}

/** Writes inflated bytes into `out` sparsely (all-zero 4 KiB blocks stay holes) and enforces the cap. */
class SparseSink {
  size = 0;
  crc = 0;
  constructor(
    private readonly out: ByteStore,
    readonly maxSize: number,
    private readonly file: string,
    private readonly withCrc: boolean,
  ) {}

  /** Refuses an output of `size` bytes when it is above the cap. */
  admit(size: number): void {
    if (size <= this.maxSize) return;
    throw new PolicyError(`'${this.file}' inflates to more than ${this.maxSize} bytes, the most allowed (maxInflatedSize)`, {
      file: this.file,
      reason: 'inflated-size-limit',
      data: { maxInflatedSize: this.maxSize },
    });
  }

  async push(chunk: Uint8Array): Promise<void> {
    this.admit(this.size + chunk.length);
    if (this.withCrc) this.crc = crc32(chunk, this.crc);
    for (let off = 0; off < chunk.length; ) {
      const run = scanRun(chunk.subarray(off), SPARSE_BLOCK);
      if (!run.zero) await this.out.write(this.size + off, chunk.subarray(off, off + run.length));
      off += run.length;
    }
    this.size += chunk.length;
  }

  async end(): Promise<void> {
    await this.out.truncate(this.size);
  }

  /** The last stage of a pipeline: every chunk into the sink. */
  stream(): Writable {
    return new (nodeStream().Writable)({
      highWaterMark: READ_CHUNK,
      write: (chunk: Buffer, _enc, done) => void this.push(chunk).then(() => done(), done),
    });
  }
}

/** Runs the stages; a signal only when there is one (pipeline refuses `signal: undefined`). */
function run(signal: AbortSignal | undefined, ...stages: [Readable, ...(NodeJS.ReadWriteStream | Writable)[]]): Promise<void> {
  return (streamPromises().pipeline as (...args: unknown[]) => Promise<void>)(...stages, ...(signal ? [{ signal }] : []));
}

/** Turns a zlib stream error into the image's corruption; everything else passes. */
function decodeError(err: unknown, file: string): unknown {
  if (err instanceof VdiskError) return err;
  const code = (err as { code?: unknown }).code;
  if (err instanceof Error && typeof code === 'string' && code.startsWith('Z_')) {
    return new CorruptImageError(`Could not decompress '${file}': ${err.message}`, { file, cause: err });
  }
  return err;
}

async function gunzip(source: ByteStore, file: string, sink: SparseSink, signal: AbortSignal | undefined): Promise<InflateResult> {
  const size = await source.size();
  try {
    await run(signal, nodeStream().Readable.from(chunksOf(source, 0, size, signal)), zlib().createGunzip({ chunkSize: 64 * 1024 }), sink.stream());
  } catch (err) {
    throw decodeError(err, file);
  }
  return { size: sink.size };
}

async function unzip(source: ByteStore, file: string, sink: SparseSink, signal: AbortSignal | undefined): Promise<InflateResult> {
  const entry = await readZipEntry(source, file);
  sink.admit(entry.size);
  const data = nodeStream().Readable.from(chunksOf(source, entry.dataOffset, entry.dataOffset + entry.compressedSize, signal));
  try {
    if (entry.method === 8) await run(signal, data, zlib().createInflateRaw({ chunkSize: 64 * 1024 }), sink.stream());
    else await run(signal, data, sink.stream());
  } catch (err) {
    throw decodeError(err, file);
  }
  if (sink.size !== entry.size) {
    throw new CorruptImageError(`'${file}': zip entry '${entry.name}' inflates to ${sink.size} bytes, not the ${entry.size} its directory records`, { file });
  }
  if (sink.crc !== entry.crc) {
    throw new CorruptImageError(`'${file}': CRC mismatch in zip entry '${entry.name}' (the archive is damaged)`, { file, data: { entry: entry.name } });
  }
  return { size: sink.size, entry: entry.name };
}

/** zstd and bzip2, through the stream decoders (a wrapper inside, such as a tar, is peeled too). */
async function decodeStream(source: ByteStore, file: string, sink: SparseSink, signal: AbortSignal | undefined): Promise<InflateResult> {
  const outer = new StreamSource(chunksOf(source, 0, await source.size(), signal), { name: file, signal });
  const { source: inner, entry } = await unwrapStream(outer, { maxSize: sink.maxSize, frameLimit: DEFAULT_SPILL_MEMORY, signal });
  for await (const chunk of inner.rest()) await sink.push(chunk);
  return { size: sink.size, entry };
}

/**
 * Inflates the image wrapped in `source` into `out` (empty, writable),
 * sparsely. Gzip trailers, zip CRCs and zstd/bzip2 checksums are checked;
 * the output stops at `options.maxSize`.
 *
 * @throws {CorruptImageError} ECORRUPT for damaged data, {@link UnsupportedError} EUNSUPPORTED for zip entries
 *   vdisk cannot decode, {@link PolicyError} EPOLICY past the cap
 */
export async function inflateInto(source: ByteStore, wrapper: Wrapper, out: ByteStore, options: InflateOptions): Promise<InflateResult> {
  const file = source.name;
  const sink = new SparseSink(out, options.maxSize, file, wrapper === 'zip');
  const result =
    wrapper === 'gzip' ? await gunzip(source, file, sink, options.signal)
    : wrapper === 'zip' ? await unzip(source, file, sink, options.signal)
    : await decodeStream(source, file, sink, options.signal);
  await sink.end();
  return result;
}
