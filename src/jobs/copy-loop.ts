/**
 * The copy loop shared by convert (and later commit and rebase): a plan
 * from block status (data, zeros, or nothing to do), run through the
 * scheduler with several requests in flight, keeping the target sparse.
 */
import { scanRun } from '../core/bytes.js';
import type { ProgressMeter } from '../core/progress.js';
import { settleAll } from '../core/settle.js';
import type { BlockDevice } from '../block/device.js';
import type { ByteStore } from '../io/byte-store.js';
import { runPipeline } from '../block/scheduler.js';

/** How one source is copied into the target. */
export interface CopySettings {
  /** Zero runs at least this long (bytes) stay sparse; 0 writes every byte as data (`-S 0`). */
  readonly sparseSize: number;
  /** The target already reads as zeros where nothing is written (new image, or `--target-is-zero`). */
  readonly targetIsZero: boolean;
  /** Copy only what the source's top layer allocates (`-B`: the new backing holds the rest). */
  readonly topOnly: boolean;
  /**
   * With `topOnly`: copy what the layers above this depth allocate, not just
   * the top layer (commit: the base's depth in the source's chain).
   */
  readonly aboveDepth?: number | undefined;
  /** Write every unit compressed (`-c`). */
  readonly compress: boolean;
  /** Size of one compressed unit (the target's cluster size). */
  readonly unit: number;
  /** Largest data request. */
  readonly bufferSize: number;
  /** Requests in flight (`-m`). */
  readonly parallel: number;
  /** Write in order (default) or out of order (`-W`). */
  readonly ordered: boolean;
  /** Bytes per second written at most (`-r`); 0 = unlimited. */
  readonly rateLimit: number;
  /** Copy data runs inside the kernel where both sides allow it (`-C`). */
  readonly copyOffload?: boolean | undefined;
  /** Turn unreadable sectors into zeros instead of failing (`--salvage`), reporting each. */
  readonly salvage?: ((message: string) => void) | undefined;
  readonly signal: AbortSignal;
  readonly progress: ProgressMeter;
}

/** Bytes the loop wrote as data and as zeros. */
export interface CopyCounters {
  dataBytes: number;
  zeroBytes: number;
}

/** Marks a data item copied by the kernel: nothing is read into memory. */
const OFFLOAD = new Uint8Array(0);

type Item =
  | { kind: 'skip'; offset: number; length: number }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'data'; offset: number; length: number; host?: { store: ByteStore; offset: number } | undefined }
  | { kind: 'unit'; offset: number; length: number };

/** Walks block status and yields work items in guest order. */
function planner(source: BlockDevice, s: CopySettings): () => Promise<Item | undefined> {
  const size = source.size;
  let offset = 0;
  let pending: { offset: number; end: number; start: number; host?: { store: ByteStore; offset: number } | undefined } | undefined; // a data run still being split
  const takeData = (): Item => {
    const run = pending as { offset: number; end: number; start: number; host?: { store: ByteStore; offset: number } | undefined };
    const length = Math.min(s.bufferSize, run.end - run.offset);
    const item: Item = { kind: 'data', offset: run.offset, length, host: run.host && { store: run.host.store, offset: run.host.offset + (run.offset - run.start) } };
    run.offset += length;
    if (run.offset >= run.end) pending = undefined;
    return item;
  };
  return async () => {
    if (pending) return takeData();
    if (offset >= size) return undefined;
    const st = await status(source, offset, Math.min(size - offset, 1 << 30), s);
    const at = offset;
    if (s.compress) {
      // Whole units that need nothing are skipped without reading; the rest go one unit at a time.
      const skippable = (s.topOnly && !st.present) || (st.zero && s.targetIsZero && !s.topOnly);
      const whole = Math.floor(st.length / s.unit) * s.unit;
      const length = skippable && whole > 0 ? whole : Math.min(s.unit, size - offset);
      offset += length;
      return { kind: skippable && whole > 0 ? 'skip' : 'unit', offset: at, length };
    }
    offset += st.length;
    if (s.topOnly && !st.present) return { kind: 'skip', offset: at, length: st.length };
    if (st.zero && s.sparseSize > 0) return s.targetIsZero && !s.topOnly ? { kind: 'skip', offset: at, length: st.length } : { kind: 'zero', offset: at, length: st.length };
    const host = s.copyOffload && st.data && !st.zero && st.store && st.hostOffset !== undefined && !st.compressed ? { store: st.store, offset: st.hostOffset } : undefined;
    pending = { offset: at, end: at + st.length, start: at, host };
    return takeData();
  };
}

const SALVAGE_STEP = 64 * 1024;

/** Block status; in salvage mode a failure counts as a short data run (which is then read sector by sector). */
async function status(source: BlockDevice, offset: number, length: number, s: CopySettings) {
  try {
    if (s.topOnly && s.aboveDepth !== undefined) {
      const st = await source.blockStatus(offset, length);
      return st.present && st.depth < s.aboveDepth ? st : { ...st, present: false };
    }
    return s.topOnly ? await source.topStatus(offset, length) : await source.blockStatus(offset, length);
  } catch (err) {
    if (!s.salvage || s.signal.aborted) throw err;
    s.salvage(`error while reading block status at offset ${offset}: ${err instanceof Error ? err.message : String(err)}`);
    return { offset, length: Math.min(length, SALVAGE_STEP), zero: false, data: true, present: true, compressed: false, depth: 0 };
  }
}

/** Reads `buf` at `offset`; in salvage mode retries sector by sector and zero-fills what cannot be read. */
async function readSalvaging(source: BlockDevice, offset: number, buf: Uint8Array, s: CopySettings): Promise<void> {
  try {
    await source.read(offset, buf);
    return;
  } catch (err) {
    if (!s.salvage || s.signal.aborted) throw err;
  }
  for (let pos = 0; pos < buf.length; pos += 512) {
    const sector = buf.subarray(pos, Math.min(buf.length, pos + 512));
    try {
      await source.read(offset + pos, sector);
    } catch (err) {
      sector.fill(0);
      s.salvage(`error while reading at byte ${offset + pos}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

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
    const buf = length <= this.size ? (this.#free.pop() ?? new Uint8Array(this.size)) : new Uint8Array(length);
    return buf.subarray(0, length);
  }
  give(buf: Uint8Array): void {
    if (buf.buffer.byteLength === this.size && this.#free.length < 32) this.#free.push(new Uint8Array(buf.buffer, 0, this.size));
  }
}

/** Copies all of `source` into `target` at `targetOffset`. */
export async function copyImage(source: BlockDevice, target: BlockDevice, targetOffset: number, s: CopySettings, counters: CopyCounters): Promise<void> {
  const throttle = rateLimiter(s.rateLimit);
  const pool = new BufferPool(Math.max(s.bufferSize, s.unit));
  const precompressed = new Map<Uint8Array, Uint8Array | null | undefined>();
  const next = planner(source, s);
  const mayZero = !s.targetIsZero || s.topOnly;
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
        const at = targetOffset + item.offset;
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
            issueSparse(target, at, buf, s.sparseSize, mayZero, counters, pending);
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

/** Issues the writes of `chunk` into `pending`, leaving zero runs of at least `sparseSize` unwritten (or written as zeros). */
function issueSparse(target: BlockDevice, at: number, chunk: Uint8Array, sparseSize: number, mayZero: boolean, counters: CopyCounters, pending: Promise<void>[]): void {
  const granule = Math.min(sparseSize, 4096);
  let pos = 0;
  let dataStart = -1;
  const flushData = (end: number): void => {
    if (dataStart < 0) return;
    pending.push(target.write(at + dataStart, chunk.subarray(dataStart, end)));
    counters.dataBytes += end - dataStart;
    dataStart = -1;
  };
  while (pos < chunk.length) {
    const run = scanRun(chunk.subarray(pos), granule);
    if (run.zero && run.length >= sparseSize) {
      flushData(pos);
      if (mayZero) {
        pending.push(target.writeZeroes(at + pos, run.length, { mayUnmap: true }));
        counters.zeroBytes += run.length;
      }
    } else if (dataStart < 0) {
      dataStart = pos;
    }
    pos += run.length;
  }
  flushData(chunk.length);
}
