/**
 * The copy loop shared by convert and commit: the plan (copy-plan.ts) run
 * through the scheduler with several requests in flight, keeping the target
 * sparse the way qemu-img does.
 *
 * Data that sits in a local file (a raw source, a qcow2 data cluster) is
 * read and scanned for zeros by one native request per item off the main
 * thread; into a target whose bytes have a fixed place (raw) the same
 * request writes it too. Everything else, and every item when the native
 * module is absent, is read, scanned and written from JavaScript, with the
 * same runs and so the same target. With `-c`, an item is a run of
 * clusters, compressed off the main thread in a few requests and written
 * as one run (BlockDevice.compressUnits, writeCompressedRun).
 */
import { scanRun } from '../core/bytes.js';
import { sharedPageBuffer } from '../core/page-buffer.js';
import { settleAll } from '../core/settle.js';
import type { BlockDevice } from '../block/device.js';
import type { SparseRuns, SparseScan } from '../block/types.js';
import { runPipeline, type PipelineStages } from '../block/scheduler.js';
import { Concat, planner, readSalvaging, writeError, type CopySettings, type HostRun, type Item } from './copy-plan.js';
import { sparseAlignment, sparseRuns } from './sparse-scan.js';

export type { CopySettings } from './copy-plan.js';

/** Bytes the loop wrote as data and as zeros. */
export interface CopyCounters {
  dataBytes: number;
  zeroBytes: number;
}

/** What the read stage hands the write stage. */
interface Fetched {
  /** The item's bytes (a pool buffer); absent for zero and skipped items and for kernel copies. */
  readonly buf?: Uint8Array | undefined;
  /** The runs of `buf` (> 0 data, < 0 zeros), when the native read scanned it. */
  readonly runs?: SparseRuns | undefined;
  /** The read stage wrote the data runs already: only the zero runs are left. */
  readonly written?: boolean | undefined;
  /** A data item the kernel copies (`-C`): nothing was read. */
  readonly offload?: boolean | undefined;
  /** A run of units compressed at once: their outputs back to back (a pool buffer) and sizes (see BlockDevice.compressUnits). */
  readonly packed?: Uint8Array | undefined;
  readonly sizes?: Int32Array | undefined;
}

const NOTHING: Fetched = {};
const OFFLOAD: Fetched = { offload: true };

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
    const buf = length <= this.size ? (this.#free.pop() ?? sharedPageBuffer(this.size)) : new Uint8Array(length);
    return buf.subarray(0, length);
  }
  give(buf: Uint8Array): void {
    if (buf.buffer instanceof SharedArrayBuffer && this.#free.length < 32) this.#free.push(new Uint8Array(buf.buffer, buf.byteOffset, this.size));
  }
}

/** Copies `sources`, one after another, into `target`. */
export async function copyImage(sources: readonly BlockDevice[], target: BlockDevice, s: CopySettings, counters: CopyCounters): Promise<void> {
  const source = new Concat(sources);
  const throttle = rateLimiter(s.rateLimit);
  const pool = new BufferPool(Math.max(s.bufferSize, s.unit));
  const precompressed = new Map<Uint8Array, Uint8Array | null | undefined>();
  // -c: an item holds a run of units, compressed in a few requests and written at once.
  const compressRuns = s.compress && target.canCompressRuns;
  const next = planner(source, { ...s, compressRuns });
  const mayZero = !s.targetIsZero;
  // -S 0: no zero detection, so a compressed target gets every cluster compressed, zeros included (as qemu-img).
  const compressZeros = s.compress && s.sparseSize === 0;
  // Salvaging reads sector by sector after a failure; -r paces the writes: both stay in JavaScript.
  const native = !s.salvage && !s.copyOffload && !s.compress;
  let offloading = true;
  const alignment = sparseAlignment(s.sparseSize);
  await runPipeline<Item, Fetched>(
    qemuWriteWords({
      next,
      async read(item) {
        if (item.kind === 'skip' || item.kind === 'zero') return NOTHING;
        if (item.kind === 'data' && s.copyOffload && offloading) {
          if (item.host?.copyRange) return OFFLOAD;
          // qemu-img stops offloading, for the rest of the copy, at the first run its drivers cannot offload
          // (a format without copy_range, a compressed cluster): later runs are read and scanned for zeros.
          offloading = false;
        }
        const buf = pool.take(item.length);
        if (item.kind === 'data' && item.host && native) {
          const fetched = await fetchNative(target, item.offset, item.host, buf, { guest: item.offset, minBytes: s.sparseSize, alignment, unit: item.unit }, s.rateLimit === 0);
          if (fetched) return fetched;
        }
        await readSalvaging(source, item.offset, buf, s);
        // Bytes read from JavaScript (a network source): scanned and written off the main thread when the target allows it.
        if (item.kind === 'data' && !item.parts && native && s.rateLimit === 0 && target.fixedLayout) {
          const runs = await target.writeRuns(item.offset, buf, { guest: item.offset, minBytes: s.sparseSize, alignment, unit: item.unit });
          if (runs) return { buf, runs, written: true };
        }
        if (item.kind === 'unit' && compressRuns && item.length % s.unit === 0) {
          const packed = pool.take(item.length);
          const sizes = new Int32Array(item.length / s.unit);
          await target.compressUnits(buf, !compressZeros, packed, sizes);
          return { buf, packed, sizes };
        }
        // Compress here, where requests run in parallel; the ordered write stage only stores the result.
        if (item.kind === 'unit' && (compressZeros || !scanRun(buf, buf.length).zero)) precompressed.set(buf, await target.compressUnit(buf));
        return { buf };
      },
      async write(item, got, issued) {
        // Every request of the item is handed to the device before `issued()` (the device keeps
        // their order), so the next item's writes may start while these are still in flight.
        const at = item.offset;
        const buf = got.buf;
        const pending: Promise<void>[] = [];
        if (item.kind === 'zero') {
          pending.push(target.writeZeroes(at, item.length, { mayUnmap: true }));
          counters.zeroBytes += item.length;
        } else if (item.kind === 'unit' && buf && got.packed && got.sizes) {
          await issueUnits(target, at, buf, got.packed, got.sizes, s.unit, mayZero, throttle, counters, pending);
        } else if (item.kind === 'unit' && buf) {
          if (compressZeros || !scanRun(buf, buf.length).zero) {
            await throttle(buf.length);
            pending.push(target.writeCompressed(at, buf, precompressed.get(buf)));
            precompressed.delete(buf);
            counters.dataBytes += buf.length;
          } else if (mayZero) {
            pending.push(target.writeZeroes(at, buf.length, { mayUnmap: true }));
            counters.zeroBytes += buf.length;
          }
        } else if (item.kind === 'data' && got.offload && item.host) {
          await throttle(item.length);
          if (await target.copyFrom(at, item.length, item.host.store, item.host.offset)) counters.dataBytes += item.length;
          else {
            // As qemu-img convert when copy_range fails: the request is read and written, zero detection included.
            const data = new Uint8Array(item.length);
            await readSalvaging(source, item.offset, data, s);
            issueRuns(target, at, data, sparseRuns(data, at, s.sparseSize, item.unit), false, mayZero, counters, pending);
          }
        } else if (buf) {
          if (!got.written) await throttle(buf.length);
          const unit = item.kind === 'data' ? item.unit : undefined;
          if (got.runs || got.written) {
            issueRuns(target, at, buf, got.runs ?? sparseRuns(buf, at, s.sparseSize, unit), got.written === true, mayZero, counters, pending);
          } else {
            // Joined compressed clusters are scanned one part at a time, as separate requests would be,
            // and written as one: neighbouring runs of the same kind merge across the parts.
            const runs: number[] = [];
            let p = 0;
            for (const n of item.kind === 'data' && item.parts ? item.parts : [buf.length]) {
              for (const r of sparseRuns(buf.subarray(p, p + n), at + p, s.sparseSize, unit)) {
                const last = runs.length - 1;
                if (last >= 0 && Math.sign(runs[last] as number) === Math.sign(r)) runs[last] = (runs[last] as number) + r;
                else runs.push(r);
              }
              p += n;
            }
            issueRuns(target, at, buf, runs, false, mayZero, counters, pending);
          }
        }
        issued();
        // The digest sees what the guest of the target sees: the data, or zeros for zero and skipped items.
        s.digest?.feed(at, item.length, item.kind === 'zero' || item.kind === 'skip' ? undefined : buf);
        // Most items make one request: awaited as it is, without settleAll's extra promise.
        if (pending.length === 1) await pending[0];
        else if (pending.length > 1) await settleAll(pending);
        if (buf) pool.give(buf);
        if (got.packed) pool.give(got.packed);
        s.progress.advance(item.length);
      },
    }),
    // Write order only shapes an allocating format's layout; raw targets take writes as reads finish.
    { parallel: s.parallel, ordered: s.ordered && !target.fixedLayout, signal: s.signal },
  );
}

/** The stages with the target's failed writes worded as qemu-img words them (see writeError); reads keep theirs. */
function qemuWriteWords(stages: PipelineStages<Item, Fetched>): PipelineStages<Item, Fetched> {
  return {
    next: stages.next,
    async read(item) {
      try {
        return await stages.read(item);
      } catch (err) {
        throw writeError(err, item.offset);
      }
    },
    async write(item, got, issued) {
      try {
        await stages.write(item, got, issued);
      } catch (err) {
        throw writeError(err, item.offset);
      }
    },
  };
}

/**
 * The native read of a data item whose bytes sit in a file: into a target
 * with a fixed layout the same request writes the data runs (`mayWrite`:
 * unless `-r` paces the writes); otherwise it reads and scans. Undefined
 * when the stores cannot (no native module, O_DIRECT, not files).
 */
async function fetchNative(target: BlockDevice, at: number, host: HostRun, buf: Uint8Array, scan: SparseScan, mayWrite: boolean): Promise<Fetched | undefined> {
  if (mayWrite && target.fixedLayout) {
    const runs = await target.copyRuns(at, buf.length, host.store, host.offset, buf, scan);
    if (runs) return { buf, runs, written: true };
  }
  const runs = await host.store.readRuns?.(host.offset, buf, scan);
  return runs ? { buf, runs } : undefined;
}

/**
 * Issues the writes of `chunk` (at target offset `at`) into `pending`: data
 * runs as data (unless `written` already), zero runs (see sparse-scan.ts)
 * as zeros, or not at all when the target reads as zeros.
 */
function issueRuns(target: BlockDevice, at: number, chunk: Uint8Array, runs: SparseRuns, written: boolean, mayZero: boolean, counters: CopyCounters, pending: Promise<void>[]): void {
  let pos = 0;
  for (const run of runs) {
    const length = Math.abs(run);
    if (run > 0) {
      if (!written) pending.push(target.write(at + pos, chunk.subarray(pos, pos + length)));
      counters.dataBytes += length;
    } else if (mayZero) {
      pending.push(target.writeZeroes(at + pos, length, { mayUnmap: true }));
      counters.zeroBytes += length;
    }
    pos += length;
  }
}

/**
 * Issues the writes of a run of compressed units into `pending`, unit by
 * unit in order as qemu-img writes them: the units that are not all zeros
 * as one compressed run each stretch, the zero ones as zeros (or not at all
 * when the target reads as zeros).
 */
async function issueUnits(
  target: BlockDevice,
  at: number,
  buf: Uint8Array,
  packed: Uint8Array,
  sizes: Int32Array,
  unit: number,
  mayZero: boolean,
  throttle: (bytes: number) => Promise<void>,
  counters: CopyCounters,
  pending: Promise<void>[],
): Promise<void> {
  let pos = 0;
  for (let i = 0; i < sizes.length; ) {
    if ((sizes[i] as number) < 0) {
      if (mayZero) {
        pending.push(target.writeZeroes(at + i * unit, unit, { mayUnmap: true }));
        counters.zeroBytes += unit;
      }
      i++;
      continue;
    }
    let end = i;
    let bytes = 0;
    while (end < sizes.length && (sizes[end] as number) >= 0) bytes += sizes[end++] as number;
    await throttle((end - i) * unit);
    pending.push(target.writeCompressedRun(at + i * unit, buf.subarray(i * unit, end * unit), packed.subarray(pos, pos + bytes), sizes.subarray(i, end)));
    counters.dataBytes += (end - i) * unit;
    pos += bytes;
    i = end;
  }
}
