/**
 * A small pool of worker threads for the compression kernels
 * (codec-kernels.ts): compressed clusters decode and encode on every core
 * while the calling thread keeps reading and writing. Tasks queue in
 * arrival order; an idle worker takes the whole queue (up to a cap) as one
 * batch, so a busy pool costs one message per batch, not per unit. The
 * queue is bounded by its callers (each awaits its task: convert has at
 * most `-m` in flight). Workers start on first use, are unref'd while idle
 * (an idle pool never keeps the process alive), and a task whose signal
 * aborts is dropped from the queue or, once sent, has its answer ignored.
 * Without a worker script beside this module (an unusual bundle) or after
 * a worker dies, tasks run on the calling thread instead.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';

import { toAbortError } from './abort.js';
import { runCodecTask, type CodecName, type CodecResult, type CodecTask, type EncodeResult } from './codec-kernels.js';
import { nativeCodecCan, runNativeCodec, runNativeEncodeUnits } from './codec-native.js';
import { scanRun } from './bytes.js';
import { workerThreads } from './lazy-builtins.js';
import type { BatchAnswer } from './codec-worker.js';

interface Job {
  readonly task: CodecTask;
  readonly transfer: readonly ArrayBuffer[];
  readonly bytes: number;
  readonly resolve: (r: CodecResult) => void;
  readonly reject: (err: unknown) => void;
  done: boolean;
  unlink?: (() => void) | undefined;
}

interface Lane {
  readonly worker: Worker;
  /** The batch being worked on, in order. */
  batch: Job[] | undefined;
}

/** Most tasks and input bytes sent in one batch (a batch in flight is a worker's share of the queue). */
const MAX_BATCH_TASKS = 64;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * The resolved worker script. The path climbs out of and back into core/
 * so that it also holds inside the bundled CLI (cli/vdisk.js), which
 * inlines this module but keeps the worker as its own file.
 */
const WORKER_URL = new URL('../core/codec-worker.js', import.meta.url);

/**
 * Most workers by default. Each costs 35-50 MiB while busy (zlib's output
 * buffers are garbage its collector reclaims in ~64 MiB steps), and the
 * calling thread needs a core too: two keep convert under 200 MiB.
 */
const MAX_DEFAULT_WORKERS = 2;

/** Workers wanted: VDISK_CODEC_THREADS (0 runs every task on the calling thread), else one per core up to MAX_DEFAULT_WORKERS. */
function wantedWorkers(): number {
  const env = process.env['VDISK_CODEC_THREADS'];
  if (env !== undefined && /^\d+$/.test(env)) return Math.min(Number(env), 64);
  return Math.max(1, Math.min(availableParallelism(), MAX_DEFAULT_WORKERS));
}

class CodecPool {
  readonly #lanes: Lane[] = [];
  readonly #queue: Job[] = [];
  readonly #max: number;
  #inThread: boolean;

  constructor(max: number) {
    this.#max = max;
    this.#inThread = max === 0 || !existsWorkerScript();
  }

  run(task: CodecTask, transfer: readonly ArrayBuffer[], signal?: AbortSignal): Promise<CodecResult> {
    if (signal?.aborted) return Promise.reject(toAbortError(signal.reason));
    // The native module runs a task on libuv's thread pool: no worker, no message, no copy.
    if (nativeCodecCan(task)) return runNativeCodec(task);
    if (this.#inThread) return runCodecTask(task);
    return new Promise<CodecResult>((resolve, reject) => {
      const job: Job = { task, transfer, bytes: taskBytes(task), resolve, reject, done: false };
      if (signal) {
        const onAbort = (): void => {
          const at = this.#queue.indexOf(job);
          if (at >= 0) this.#queue.splice(at, 1);
          settle(job, () => reject(toAbortError(signal.reason)));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        job.unlink = () => signal.removeEventListener('abort', onAbort);
      }
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /** Stops every worker; queued and running tasks fail. */
  async close(): Promise<void> {
    const lanes = this.#lanes.splice(0);
    for (const job of this.#queue.splice(0)) settle(job, () => job.reject(new Error('The codec pool was closed')));
    for (const lane of lanes) for (const job of lane.batch ?? []) settle(job, () => job.reject(new Error('The codec pool was closed')));
    await Promise.all(lanes.map((l) => l.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const lane = this.#lanes.find((l) => !l.batch) ?? this.#spawn();
      if (!lane) return;
      const batch = this.#takeBatch();
      lane.batch = batch;
      lane.worker.ref();
      lane.worker.postMessage(
        batch.map((j) => j.task),
        batch.flatMap((j) => j.transfer),
      );
    }
  }

  #takeBatch(): Job[] {
    const batch: Job[] = [];
    let bytes = 0;
    // Spread the queue over idle workers when more could start: one task each until all are busy.
    const share = this.#lanes.length < this.#max ? 1 : Math.ceil(this.#queue.length / Math.max(1, this.#lanes.filter((l) => !l.batch).length));
    while (this.#queue.length > 0 && batch.length < Math.min(share, MAX_BATCH_TASKS)) {
      const next = this.#queue[0] as Job;
      if (batch.length > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
      this.#queue.shift();
      batch.push(next);
      bytes += next.bytes;
    }
    return batch;
  }

  #spawn(): Lane | undefined {
    if (this.#lanes.length >= this.#max) return undefined;
    // No inherited Node flags: some (`--input-type`, `-e`'s) are refused in workers and would kill them at start.
    const worker = new (workerThreads().Worker)(fileURLToPath(WORKER_URL), { execArgv: [] });
    const lane: Lane = { worker, batch: undefined };
    worker.on('message', (answers: readonly BatchAnswer[]) => this.#answered(lane, answers));
    worker.on('error', (err) => this.#lost(lane, err));
    worker.on('exit', (code) => this.#lost(lane, new Error(`A codec worker exited (code ${code})`)));
    worker.unref();
    this.#lanes.push(lane);
    return lane;
  }

  #answered(lane: Lane, answers: readonly BatchAnswer[]): void {
    const batch = lane.batch ?? [];
    lane.batch = undefined;
    for (const [i, job] of batch.entries()) {
      const a = answers[i];
      settle(job, () => (a?.ok ? job.resolve(a.result) : job.reject(new Error(a ? a.message : 'A codec worker gave no answer'))));
    }
    if (this.#queue.length > 0) this.#dispatch();
    else lane.worker.unref();
  }

  /** A worker died: its tasks fail, and from now on tasks run on the calling thread. */
  #lost(lane: Lane, err: Error): void {
    const at = this.#lanes.indexOf(lane);
    if (at < 0) return;
    this.#lanes.splice(at, 1);
    this.#inThread = true;
    for (const job of lane.batch ?? []) settle(job, () => job.reject(err));
    for (const job of this.#queue.splice(0)) settle(job, () => runCodecTask(job.task).then(job.resolve, job.reject));
  }
}

function settle(job: Job, fn: () => unknown): void {
  if (job.done) return;
  job.done = true;
  job.unlink?.();
  fn();
}

function taskBytes(t: CodecTask): number {
  return t.op === 'decode' ? t.input.length : t.data.length;
}

function existsWorkerScript(): boolean {
  try {
    return existsSync(fileURLToPath(WORKER_URL));
  } catch {
    return false;
  }
}

let pool: CodecPool | undefined;

/**
 * Runs a codec task on the pool. Buffers in `transfer` move to the worker
 * (the caller must not touch them again); shared memory is written in place.
 */
export function runCodec(task: CodecTask, transfer: readonly ArrayBuffer[] = [], signal?: AbortSignal): Promise<CodecResult> {
  pool ??= new CodecPool(wantedWorkers());
  return pool.run(task, transfer, signal);
}

/**
 * Encodes one unit. The native module reads `data` where it lies (the
 * caller keeps it unchanged until this resolves); a worker gets a copy of
 * its own, or `data` itself with `handOver` when it owns its whole buffer
 * (the caller must not touch it again).
 */
export async function encodeUnitOnPool(codec: CodecName, data: Uint8Array, handOver = false): Promise<Uint8Array> {
  const task = { op: 'encode', codec, data } as const;
  if (nativeCodecCan(task)) return ((await runNativeCodec(task)) as EncodeResult).out;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  const owned = handOver && whole ? data : new Uint8Array(data); // a copy of its own (Buffer#slice would share)
  return ((await runCodec({ op: 'encode', codec, data: owned }, [owned.buffer as ArrayBuffer])) as EncodeResult).out;
}

/**
 * Compresses every unit of `data` (a whole number of `unit`-byte units) for
 * a run written at once: the outputs packed back to back in `out` (at least
 * `data.length` bytes) in unit order, `sizes[i]` the bytes unit i took
 * there, 0 for a unit that does not compress below a unit (stored plain)
 * and -1 for an all-zero unit when `skipZeros`. The native module does it
 * in one request off the main thread, zero scan included; otherwise the
 * units go through the pool one by one. Returns the packed length.
 */
export async function encodeUnitsOnPool(codec: CodecName, data: Uint8Array, unit: number, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<number> {
  const packed = await runNativeEncodeUnits(codec, data, unit, skipZeros, out, sizes);
  if (packed !== undefined) return packed;
  const units = Array.from({ length: data.length / unit }, (_, i) => data.subarray(i * unit, (i + 1) * unit));
  const outs = await Promise.all(units.map((u) => (skipZeros && scanRun(u, u.length).zero ? Promise.resolve(undefined) : encodeUnitOnPool(codec, u))));
  let pos = 0;
  for (const [i, o] of outs.entries()) {
    sizes[i] = o === undefined ? -1 : o.length < unit ? o.length : 0;
    if (o && o.length < unit) out.set(o, pos);
    pos += Math.max(0, sizes[i] as number);
  }
  return pos;
}

/** Stops the pool's workers (they never keep the process alive; this is for embedders that want them gone now). */
export async function closeCodecPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}
