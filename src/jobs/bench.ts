/**
 * bench: a sequential I/O benchmark (`qemu-img bench`): `count` requests of
 * `bufferSize` bytes, `depth` in flight through the scheduler, starting at
 * `offset` and advancing by `step` (wrapping at the image's end), with
 * optional flushes every `flushInterval` requests.
 */

// fs.promises, read when used: node:fs/promises costs start-up time in the bundled CLI.
import { promises as fsp } from 'node:fs';

import { InvalidArgumentError, IoError } from '../core/errors.js';
import { isJsonName } from '../core/image-options.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { runPipeline } from '../block/scheduler.js';
import { cacheSemantics } from '../core/cache-mode.js';

/** Phases of {@link bench}: `bench` (requests completed). */
export type BenchPhase = 'bench';

/** Options of {@link bench}. */
export interface BenchOptions extends JobOptions<BenchPhase>, Omit<OpenImageOptions, 'readOnly'> {
  /** Requests to send (`-c`, default 75000). */
  count?: number | undefined;
  /** Requests in flight (`-d`, default 64). */
  depth?: number | undefined;
  /** First offset (`-o`, default 0). */
  offset?: number | undefined;
  /** Bytes per request (`-s`, default 4096). */
  bufferSize?: number | undefined;
  /** Distance between request offsets (`-S`; default the buffer size). */
  step?: number | undefined;
  /** Write instead of read (`-w`). */
  write?: boolean | undefined;
  /** Byte written by write tests (`--pattern`, default 0). */
  pattern?: number | undefined;
  /** Flush after every this many requests (`--flush-interval`, write tests only). */
  flushInterval?: number | undefined;
  /** Flush without waiting for the requests in flight (`--no-drain`). */
  noDrain?: boolean | undefined;
  /** I/O engine (`-i`; `-n` is `native`), which qemu's file driver checks against the cache mode. */
  aio?: 'threads' | 'native' | 'io_uring' | undefined;
  /** Called once the image is open, before the first request (the CLI prints its `Sending ...` line then). */
  onStart?: ((plan: Omit<BenchResult, 'seconds'>) => void) | undefined;
}

/** What {@link bench} measured. */
export interface BenchResult {
  /** Requests sent. */
  readonly count: number;
  /** Bytes per request. */
  readonly bufferSize: number;
  /** Requests in flight. */
  readonly depth: number;
  /** First offset. */
  readonly offset: number;
  /** Offset step. */
  readonly step: number;
  /** Write test. */
  readonly write: boolean;
  /** Wall-clock seconds the requests took. */
  readonly seconds: number;
}

/** The checks qemu-img bench makes before opening the image. */
export function validateBench(opts: BenchOptions): void {
  const depth = opts.depth ?? 64;
  if (!opts.write && opts.flushInterval) throw new InvalidArgumentError('flushInterval is only available in write tests', { reason: 'flush-interval-needs-write' });
  if (opts.flushInterval && opts.flushInterval < depth) throw new InvalidArgumentError("Flush interval can't be smaller than depth");
}

/**
 * qemu's file driver refuses aio=native without O_DIRECT once it has opened
 * the file: a file that cannot be opened, or -U with -w, fails first.
 */
async function refuseNativeAio(filename: ImageTarget, opts: BenchOptions): Promise<void> {
  if (typeof filename !== 'string' || isJsonName(filename) || (opts.forceShare && opts.write)) return;
  const found = await fsp.stat(filename).then(
    () => true,
    () => false,
  );
  if (found) throw new InvalidArgumentError(`Could not open '${filename}': aio=native was specified, but it requires cache.direct=on, which was not specified.`);
}

interface RunShape {
  readonly depth: number;
  readonly bufferSize: number;
  readonly write: boolean;
}

/** Sends `n` requests through the scheduler, `depth` in flight, completing in any order. */
async function runRequests(dev: BlockDevice, n: number, o: RunShape, next: () => number, buffers: Uint8Array[], ctx: JobContext<BenchPhase>): Promise<void> {
  let issued = 0;
  const free = [...buffers];
  await runPipeline<number, void>(
    {
      next: () => Promise.resolve(issued < n ? (issued++, next()) : undefined),
      read: async (offset) => {
        if (offset + o.bufferSize > dev.size) throw new IoError('Failed request: Input/output error');
        const buf = free.pop() ?? new Uint8Array(o.bufferSize);
        try {
          if (o.write) await dev.write(offset, buf);
          else await dev.read(offset, buf);
        } finally {
          free.push(buf);
        }
        ctx.progress.advance(1);
      },
      write: () => Promise.resolve(),
    },
    { parallel: Math.max(1, o.depth), ordered: false, signal: ctx.signal },
  );
}

async function runBench(filename: ImageTarget, opts: BenchOptions, ctx: JobContext<BenchPhase>): Promise<BenchResult> {
  validateBench(opts);
  const write = opts.write === true;
  if (opts.aio === 'native' && !cacheSemantics(opts.cache).direct) await refuseNativeAio(filename, opts);
  const dev = await BlockDevice.open(filename, { ...opts, readOnly: !write });
  try {
    const count = opts.count ?? 75000;
    const depth = opts.depth ?? 64;
    const bufferSize = opts.bufferSize ?? 4096;
    const step = opts.step || bufferSize;
    const start = opts.offset ?? 0;
    const size = dev.size;
    let cursor = start;
    const next = (): number => {
      const at = cursor;
      cursor = (cursor + step) % size;
      return at;
    };
    const buffers = Array.from({ length: Math.min(depth, count) }, () => new Uint8Array(bufferSize).fill(opts.pattern ?? 0));
    ctx.progress.phase('bench', count);
    const o = { depth, bufferSize, write };
    opts.onStart?.({ count, bufferSize, depth, offset: start, step, write });
    const t0 = process.hrtime.bigint();
    const interval = opts.flushInterval ?? 0;
    if (!interval) await runRequests(dev, count, o, next, buffers, ctx);
    else if (opts.noDrain) {
      // Flushes run alongside the requests still in flight.
      const flushes: Promise<void>[] = [];
      for (let done = 0; done < count; done += interval) {
        await runRequests(dev, Math.min(interval, count - done), o, next, buffers, ctx);
        if (done + interval <= count) flushes.push(dev.flush());
      }
      await Promise.all(flushes);
    } else {
      for (let done = 0; done < count; done += interval) {
        await runRequests(dev, Math.min(interval, count - done), o, next, buffers, ctx);
        if (done + interval <= count) await dev.flush();
      }
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    ctx.progress.finish();
    return { count, bufferSize, depth, offset: start, step, write, seconds };
  } finally {
    await dev.close();
  }
}

/**
 * Runs qemu-img's sequential I/O benchmark on `filename`.
 *
 * @example
 * ```ts
 * const r = await bench('disk.qcow2', { count: 1000, write: true, pattern: 0xaa });
 * console.log(`${r.count} requests in ${r.seconds.toFixed(3)} s`);
 * ```
 * @throws {InvalidArgumentError} EINVAL for bad combinations, {@link IoError} EIO when a request falls past the end
 */
export function bench(filename: ImageTarget, options: BenchOptions = {}): Job<BenchResult, BenchPhase> {
  return new Job((ctx) => runBench(filename, options, ctx), options);
}
