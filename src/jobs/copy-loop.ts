/**
 * The copy loop shared by convert and commit: the plan (copy-plan.ts) run
 * through the scheduler with several requests in flight, keeping the target
 * sparse the way qemu-img does.
 */
import { scanRun } from '../core/bytes.js';
import { settleAll } from '../core/settle.js';
import type { BlockDevice } from '../block/device.js';
import { runPipeline } from '../block/scheduler.js';
import { Concat, planner, readSalvaging, type CopySettings, type Item } from './copy-plan.js';
import { nextSparseRun, sparseAlignment } from './sparse-scan.js';

export type { CopySettings } from './copy-plan.js';

/** Bytes the loop wrote as data and as zeros. */
export interface CopyCounters {
  dataBytes: number;
  zeroBytes: number;
}

/** Marks a data item copied by the kernel: nothing is read into memory. */
const OFFLOAD = new Uint8Array(0);

/** A token bucket for `-r`: waits so that writes stay under `rate` bytes per second. */
function rateLimiter(rate: number): (bytes: number) => Promise<void> {
  if (rate <= 0) return async () => undefined;
  const start = Date.now();
  let sent = 0;
  return async (bytes) => {
    sent += bytes;
    const due = start + (sent / rate) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}

/**
 * Recycled request buffers: fresh multi-megabyte buffers cost a zero fill and
 * page faults on every request; each worker holds at most one at a time.
 */
class BufferPool {
  readonly #free: Uint8Array[] = [];
  constructor(private readonly size: number) {}
  take(length: number): Uint8Array {
    // Shared memory, so that a codec worker decodes compressed clusters straight into it.
    const buf = length <= this.size ? (this.#free.pop() ?? new Uint8Array(new SharedArrayBuffer(this.size))) : new Uint8Array(length);
    return buf.subarray(0, length);
  }
  give(buf: Uint8Array): void {
    if (buf.buffer.byteLength === this.size && this.#free.length < 32) this.#free.push(new Uint8Array(buf.buffer, 0, this.size));
  }
}

/** Copies `sources`, one after another, into `target`. */
export async function copyImage(sources: readonly BlockDevice[], target: BlockDevice, s: CopySettings, counters: CopyCounters): Promise<void> {
  const source = new Concat(sources);
  const throttle = rateLimiter(s.rateLimit);
  const pool = new BufferPool(Math.max(s.bufferSize, s.unit));
  const precompressed = new Map<Uint8Array, Uint8Array | null | undefined>();
  const next = planner(source, s);
  const mayZero = !s.targetIsZero;
  await runPipeline<Item, Uint8Array | undefined>(
    {
      next,
      async read(item) {
        if (item.kind === 'skip' || item.kind === 'zero') return undefined;
        if (item.kind === 'data' && item.host) return OFFLOAD;
        const buf = pool.take(item.length);
        await readSalvaging(source, item.offset, buf, s);
        // Compress here, where requests run in parallel; the ordered write stage only stores the result.
        if (item.kind === 'unit' && !scanRun(buf, buf.length).zero) precompressed.set(buf, await target.compressUnit(buf));
        return buf;
      },
      async write(item, buf, issued) {
        // Every request of the item is handed to the device before `issued()` (the device keeps
        // their order), so the next item's writes may start while these are still in flight.
        const at = item.offset;
        const pending: Promise<void>[] = [];
        if (item.kind === 'zero') {
          pending.push(target.writeZeroes(at, item.length, { mayUnmap: true }));
          counters.zeroBytes += item.length;
        } else if (item.kind === 'unit' && buf) {
          if (!scanRun(buf, buf.length).zero) {
            await throttle(buf.length);
            pending.push(target.writeCompressed(at, buf, precompressed.get(buf)));
            precompressed.delete(buf);
            counters.dataBytes += buf.length;
          } else if (mayZero) {
            pending.push(target.writeZeroes(at, buf.length, { mayUnmap: true }));
            counters.zeroBytes += buf.length;
          }
        } else if (item.kind === 'data' && buf === OFFLOAD && item.host) {
          await throttle(item.length);
          if (!(await target.copyFrom(at, item.length, item.host.store, item.host.offset))) {
            const data = new Uint8Array(item.length);
            await readSalvaging(source, item.offset, data, s);
            await target.write(at, data);
          }
          counters.dataBytes += item.length;
        } else if (buf) {
          await throttle(buf.length);
          if (s.sparseSize === 0) {
            pending.push(target.write(at, buf));
            counters.dataBytes += buf.length;
          } else {
            // Joined compressed clusters are scanned one run at a time, as separate requests would be.
            let p = 0;
            for (const n of item.kind === 'data' && item.parts ? item.parts : [buf.length]) {
              issueSparse(target, at + p, buf.subarray(p, p + n), s.sparseSize, mayZero, counters, pending);
              p += n;
            }
          }
        }
        issued();
        await settleAll(pending);
        if (buf && buf !== OFFLOAD) pool.give(buf);
        s.progress.advance(item.length);
      },
    },
    // Write order only shapes an allocating format's layout; raw targets take writes as reads finish.
    { parallel: s.parallel, ordered: s.ordered && !target.fixedLayout, signal: s.signal },
  );
}

/**
 * Issues the writes of `chunk` into `pending`: data runs as data, zero runs
 * (see sparse-scan.ts) as zeros, or not at all when the target reads as zeros.
 */
function issueSparse(target: BlockDevice, at: number, chunk: Uint8Array, sparseSize: number, mayZero: boolean, counters: CopyCounters, pending: Promise<void>[]): void {
  const alignment = sparseAlignment(sparseSize);
  for (let pos = 0; pos < chunk.length; ) {
    const run = nextSparseRun(chunk.subarray(pos), Math.floor((at + pos) / 512), sparseSize, alignment);
    if (run.data) {
      pending.push(target.write(at + pos, chunk.subarray(pos, pos + run.length)));
      counters.dataBytes += run.length;
    } else if (mayZero) {
      pending.push(target.writeZeroes(at + pos, run.length, { mayUnmap: true }));
      counters.zeroBytes += run.length;
    }
    pos += run.length;
  }
}
