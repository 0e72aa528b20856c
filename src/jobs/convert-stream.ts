/**
 * convertToStream: an image produced strictly in order into a pipe or an
 * upload, its exact length known before the first byte. The source is read
 * twice: once to plan (which units hold data; for compressed images, how
 * long each compressed unit is), once to emit. Compressed units are kept
 * from the first pass in a bounded spill (memory, then a private
 * temporary file) unless the caller asks to compress twice instead.
 */
import { Readable } from 'node:stream';

import { AbortError, InvalidArgumentError, IoError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { toAbortError } from '../core/abort.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { defaultRegistry, type DriverRegistry } from '../block/registry.js';
import { AppendSpill } from '../block/append-spill.js';
import type { StreamPlan, StreamWriter } from '../block/types.js';
import { typedCreateOptions, type CreateOptionInput } from './create.js';
import { planStream, unitData } from './stream-plan.js';

/** Phases of {@link convertToStream}: `plan` (bytes of the source scanned before the first byte). */
export type StreamPhase = 'plan';

/** Options of {@link convertToStream} (and of `measure` with `exact`). */
export interface ConvertToStreamOptions extends JobOptions<StreamPhase>, Omit<OpenImageOptions, 'readOnly' | 'format' | 'signal'> {
  /** Format of the source (`-f`); probed when omitted. */
  sourceFormat?: string | undefined;
  /** Format of the stream (`-O`, default `raw`): raw, qcow2, vpc, vhdx, vmdk (streamOptimized). */
  targetFormat?: string | undefined;
  /** Create options of the image streamed (`-o`). */
  options?: CreateOptionInput | readonly CreateOptionInput[] | undefined;
  /** Compress the data units (`-c`; qcow2 zlib or zstd by `compression_type`). */
  compress?: boolean | undefined;
  /** `0` stores every unit, zeros included (`-S 0`); otherwise units of zeros are left out (default). */
  sparseSize?: number | undefined;
  /**
   * Compress every unit twice (once to learn its length, once to send it)
   * instead of keeping the compressed units of the first pass in a spill:
   * no scratch space, twice the CPU.
   */
  compressTwice?: boolean | undefined;
  /** Compressed bytes kept in memory before the spill file is used (default 32 MiB). */
  spillMemory?: number | undefined;
  /** Most compressed bytes kept in the spill (default: no limit beyond the file system). */
  spillLimit?: number | undefined;
  /** Directory of the spill file (default the OS temporary directory; the file is unlinked at once). */
  spillDir?: string | undefined;
  /** Bytes the stream buffers before it waits for its reader (default 1 MiB). */
  highWaterMark?: number | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
}

/** What {@link convertToStream} gives: the image's exact length, and its bytes. */
export interface StreamOutput {
  /** Bytes `stream` will produce, exactly. */
  readonly length: number;
  /** The format streamed. */
  readonly format: string;
  /** Virtual size of the image streamed. */
  readonly size: number;
  /**
   * The image, in order, with back-pressure. It owns the open source: read
   * it to the end or destroy it. Aborting the job's signal destroys it with
   * an {@link AbortError}.
   */
  readonly stream: Readable;
}

const DEFAULT_SPILL_MEMORY = 32 * 1024 * 1024;

/** A stream writer for the target format, with the options checked. */
function writerFor(opts: ConvertToStreamOptions, size: number): { writer: StreamWriter; format: string } {
  const registry = opts.registry ?? defaultRegistry;
  const format = opts.targetFormat ?? 'raw';
  const driver = registry.get(format);
  if (!driver.streamWriter) throw new UnsupportedError(`Format '${format}' cannot be written to a stream`);
  const options = typedCreateOptions(registry, driver, opts.options);
  if (opts.sparseSize !== undefined && (!Number.isSafeInteger(opts.sparseSize) || opts.sparseSize < 0)) {
    throw new InvalidArgumentError('Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16MB.');
  }
  const writer = driver.streamWriter({ size, options, compress: opts.compress === true });
  if (opts.compress && !writer.pack) throw new InvalidArgumentError('Compression not supported for this file format');
  return { writer, format };
}

/** Plans the image: the writer, its plan, and the spill holding packed units (if kept). */
async function prepare(dev: BlockDevice, opts: ConvertToStreamOptions, ctx: JobContext<StreamPhase>, keep: boolean): Promise<{ writer: StreamWriter; format: string; plan: StreamPlan; spill: AppendSpill | undefined }> {
  const { writer, format } = writerFor(opts, dev.size);
  const spill = keep && writer.pack && !opts.compressTwice ? new AppendSpill({ memory: opts.spillMemory ?? DEFAULT_SPILL_MEMORY, limit: opts.spillLimit ?? Number.MAX_SAFE_INTEGER, dir: opts.spillDir }) : undefined;
  try {
    const plan = await planStream(dev, writer, { everyUnit: opts.sparseSize === 0, spill, signal: ctx.signal, progress: ctx.progress });
    return { writer, format, plan, spill };
  } catch (err) {
    await spill?.close();
    throw err;
  }
}

/** The writer's bytes, checked against the length promised; the source closes when they end. */
async function* checked(bytes: AsyncIterable<Uint8Array>, length: number, name: string, close: () => Promise<void>): AsyncGenerator<Uint8Array> {
  let sent = 0;
  try {
    for await (const b of bytes) {
      sent += b.length;
      if (sent > length) throw new IoError(`${name}: the stream grew past its planned length of ${length} bytes`);
      if (b.length > 0) yield b;
    }
    if (sent !== length) throw new IoError(`${name}: the stream ended at ${sent} bytes, ${length} were planned`);
  } finally {
    await close();
  }
}

async function runToStream(source: ImageTarget, opts: ConvertToStreamOptions, ctx: JobContext<StreamPhase>): Promise<StreamOutput> {
  const dev = await BlockDevice.open(source, { ...opts, format: opts.sourceFormat, readOnly: true, noShare: true, signal: ctx.signal });
  let spill: AppendSpill | undefined;
  try {
    const prepared = await prepare(dev, opts, ctx, true);
    spill = prepared.spill;
    const { writer, plan, format } = prepared;
    const length = writer.length(plan);
    const signal = opts.signal;
    const close = async (): Promise<void> => {
      await spill?.close();
      await dev.close();
    };
    const data = unitData(dev, writer, plan, spill, signal ?? new AbortController().signal);
    const stream = Readable.from(checked(writer.emit(plan, data), length, dev.filename, close), { objectMode: false, highWaterMark: opts.highWaterMark ?? 1024 * 1024 });
    if (signal) {
      const onAbort = (): void => void stream.destroy(toAbortError(signal.reason));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    ctx.progress.finish();
    return { length, format, stream, size: dev.size };
  } catch (err) {
    await spill?.close();
    await dev.close();
    throw err instanceof VdiskError || !(err instanceof Error) || err.name !== 'AbortError' ? err : new AbortError();
  }
}

/**
 * Produces `source` as an image of `targetFormat` in a Node `Readable`,
 * strictly in order, with its exact length known first — for a pipe, a tar
 * entry or an HTTP upload with Content-Length, without scratch space for
 * the image. The job settles once the length is known (after a first pass
 * over the source); then read `stream` (`Readable.toWeb(stream)` gives a
 * web stream).
 *
 * @example
 * ```ts
 * const { length, stream } = await convertToStream('disk.raw', { targetFormat: 'qcow2', compress: true });
 * await fetch(url, { method: 'PUT', headers: { 'content-length': String(length) }, body: Readable.toWeb(stream), duplex: 'half' });
 * ```
 * @throws {UnsupportedError} EUNSUPPORTED for a format that cannot be streamed or options a stream cannot carry
 * @throws {InvalidArgumentError} EINVAL for bad options
 */
export function convertToStream(source: ImageTarget, options: ConvertToStreamOptions = {}): Job<StreamOutput, StreamPhase> {
  return new Job((ctx) => runToStream(source, options, ctx), options);
}

/**
 * The exact length {@link convertToStream} would give for the same source
 * and options (`measure` with `exact`), found by the same planning pass
 * (compressed units are compressed and counted, not kept).
 */
export async function exactLength(dev: BlockDevice, opts: ConvertToStreamOptions, ctx: JobContext<StreamPhase>): Promise<number> {
  const { writer, plan } = await prepare(dev, opts, ctx, false);
  return writer.length(plan);
}
