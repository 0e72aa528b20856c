/**
 * The two passes behind a streamed image. The plan pass walks the source
 * once (block status first: unallocated and zero ranges are never read),
 * finds the units holding data and, for writers that pack (compress),
 * packs each one to learn its length. The emit pass reads the data units
 * again, in order and ahead of the consumer, and hands them to the writer;
 * packed units come from the spill kept in the plan pass, or are packed
 * a second time when the caller chose not to keep them.
 */
import type { ProgressMeter } from '../core/progress.js';
import { isZero } from '../core/bytes.js';
import { IoError } from '../core/errors.js';
import type { BlockDevice } from '../block/device.js';
import type { StreamPlan, StreamWriter } from '../block/types.js';
import type { AppendSpill } from '../block/append-spill.js';

/** Bytes the plan pass reads at a time (whole units; more when a unit is larger). */
const CHUNK = 2 * 1024 * 1024;
/** Chunks read or packed ahead of the consumer in the emit pass. */
const AHEAD = 4;
const STATUS_REQUEST = 1 << 30;

/** How data units are found and their packed bytes kept. */
export interface PlanSettings {
  /** Every unit is data (`-S 0`): nothing is scanned for zeros. */
  readonly everyUnit: boolean;
  /** Keep packed units for the emit pass (compress once); otherwise they are packed again. */
  readonly spill: AppendSpill | undefined;
  readonly signal: AbortSignal;
  readonly progress: ProgressMeter<'plan'>;
}

/** A growable list of numbers, kept compact. */
class NumberList<A extends Float64Array | Uint32Array> {
  #data: A;
  #n = 0;
  constructor(private readonly make: (n: number) => A) {
    this.#data = make(1024);
  }
  push(v: number): void {
    if (this.#n === this.#data.length) {
      const next = this.make(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.#n++] = v;
  }
  done(): A {
    return this.#data.subarray(0, this.#n) as A;
  }
}

/** Reads guest bytes `[offset, offset + into.length)`, zeros past the virtual size. */
async function readPadded(dev: BlockDevice, offset: number, into: Uint8Array): Promise<void> {
  const n = Math.max(0, Math.min(into.length, dev.size - offset));
  if (n > 0) await dev.read(offset, into.subarray(0, n));
  if (n < into.length) into.fill(0, n);
}

/** Guest ranges that may hold data (allocated, not known zero), merged, in `[start, end)`. */
async function dataRanges(dev: BlockDevice, start: number, end: number): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for (let at = start; at < end; ) {
    const st = await dev.blockStatus(at, Math.min(end - at, STATUS_REQUEST));
    if (st.length <= 0) break;
    if (st.data && !st.zero) {
      const last = out[out.length - 1];
      if (last && last[1] === at) last[1] = at + st.length;
      else out.push([at, at + st.length]);
    }
    at += st.length;
  }
  return out;
}

/** Packs several units at once (the codecs run on the thread pool). */
function packAll(writer: StreamWriter, units: Uint8Array[]): Promise<Uint8Array[]> {
  const pack = writer.pack!.bind(writer);
  return Promise.all(units.map((u) => pack(u)));
}

/** What the plan pass found in one chunk: its data units and, for packing writers, their packed bytes. */
interface ChunkFinding {
  readonly units: number[];
  readonly packed: Uint8Array[];
}

/** Scans `[start, end)`: block status first, then the bytes of what may hold data. */
async function scanChunk(dev: BlockDevice, writer: StreamWriter, everyUnit: boolean, start: number, end: number, chunk: number): Promise<ChunkFinding> {
  const unit = writer.unit;
  const ranges = everyUnit ? [[start, end] as [number, number]] : await dataRanges(dev, start, end);
  if (ranges.length === 0) return { units: [], packed: [] };
  const buf = new Uint8Array(chunk);
  await readPadded(dev, start, buf);
  const units: number[] = [];
  const found: Uint8Array[] = [];
  for (let i = Math.floor(start / unit); i * unit < end; i++) {
    const from = i * unit - start;
    const data = buf.subarray(from, from + unit);
    const touched = ranges.some(([a, b]) => a < (i + 1) * unit && b > i * unit);
    if (!touched || (!everyUnit && isZero(data))) continue;
    units.push(i);
    // Each unit its own buffer: a codec may take over (transfer) what it packs.
    if (writer.pack) found.push(data.slice());
  }
  return { units, packed: found.length > 0 ? await packAll(writer, found) : [] };
}

/**
 * The plan pass: which units hold data and, for packing writers, how long
 * each packed unit is. Up to {@link AHEAD} chunks are read and packed at
 * once; their findings are taken in order.
 */
export async function planStream(dev: BlockDevice, writer: StreamWriter, settings: PlanSettings): Promise<StreamPlan> {
  const unit = writer.unit;
  const size = dev.size;
  const count = Math.ceil(size / unit);
  const units = new NumberList((n) => new Float64Array(n));
  const packed = writer.pack ? new NumberList((n) => new Uint32Array(n)) : undefined;
  const chunk = Math.max(unit, Math.floor(CHUNK / unit) * unit);
  settings.progress.phase('plan', size);
  if ((settings.everyUnit || writer.storesEveryUnit) && !writer.pack) {
    for (let i = 0; i < count; i++) units.push(i);
    settings.progress.advance(size);
    return { size, unit, units: units.done() };
  }
  const queue: { bytes: number; finding: Promise<ChunkFinding> }[] = [];
  let next = 0;
  const fill = (): void => {
    while (queue.length < AHEAD && next < size) {
      const end = Math.min(size, next + chunk);
      const finding = scanChunk(dev, writer, settings.everyUnit, next, end, chunk);
      // Failures surface when the chunk's turn comes.
      finding.catch(() => undefined);
      queue.push({ bytes: end - next, finding });
      next = end;
    }
  };
  fill();
  while (queue.length > 0) {
    settings.signal.throwIfAborted();
    const head = queue.shift()!;
    const found = await head.finding;
    fill();
    for (const i of found.units) units.push(i);
    for (const p of found.packed) {
      packed!.push(p.length);
      await settings.spill?.append(p);
    }
    settings.progress.advance(head.bytes);
  }
  return { size, unit, units: units.done(), packed: packed?.done() };
}

/** Runs of consecutive data units (plan indexes `[from, to)`), at most `max` units each. */
function* unitRuns(units: Float64Array, max: number): Generator<[number, number]> {
  for (let from = 0; from < units.length; ) {
    let to = from + 1;
    while (to < units.length && to - from < max && units[to] === units[to - 1]! + 1) to++;
    yield [from, to];
    from = to;
  }
}

/** Reads the units of one run: `unit` bytes each, zero-padded past the virtual size. */
async function readRun(dev: BlockDevice, plan: StreamPlan, [from, to]: [number, number]): Promise<Uint8Array[]> {
  const buf = new Uint8Array((to - from) * plan.unit);
  await readPadded(dev, plan.units[from]! * plan.unit, buf);
  const out: Uint8Array[] = [];
  for (let k = 0; k < to - from; k++) out.push(buf.subarray(k * plan.unit, (k + 1) * plan.unit));
  return out;
}

/** Packing twice must give what the plan counted, or the layout written first would lie. */
function samePacking(plan: StreamPlan, first: number, packed: Uint8Array[]): Uint8Array[] {
  packed.forEach((p, k) => {
    const planned = plan.packed?.[first + k];
    if (p.length !== planned) throw new IoError(`A unit packed to ${p.length} bytes where the plan counted ${planned}`, { offset: plan.units[first + k]! * plan.unit });
  });
  return packed;
}

/**
 * The emit pass's data: each data unit in plan order (packed when the
 * writer packs), read and packed up to {@link AHEAD} chunks ahead.
 */
export async function* unitData(dev: BlockDevice, writer: StreamWriter, plan: StreamPlan, spill: AppendSpill | undefined, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  if (writer.pack && spill && plan.packed) {
    yield* spill.read(plan.packed);
    return;
  }
  const perRun = Math.max(1, Math.floor(CHUNK / plan.unit));
  const runs = unitRuns(plan.units, perRun);
  const queue: Promise<Uint8Array[]>[] = [];
  const fill = (): void => {
    while (queue.length < AHEAD) {
      const next = runs.next();
      if (next.done) return;
      const read = readRun(dev, plan, next.value);
      const first = next.value[0];
      const p = writer.pack ? read.then(async (us) => samePacking(plan, first, await packAll(writer, us.map((u) => u.slice())))) : read;
      // Failures surface when the consumer reaches this run.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    signal.throwIfAborted();
    const got = await queue.shift()!;
    fill();
    yield* got;
  }
}
