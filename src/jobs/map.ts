/**
 * map: the image's extents through the whole chain, merged exactly as
 * `qemu-img map` merges them (same zero/data/present/depth, contiguous host
 * offsets in the same file). Cost follows the allocated extents, not the
 * virtual size.
 */
import { throwIfAborted } from '../core/abort.js';
import { InvalidArgumentError, VdiskError } from '../core/errors.js';
import { BlockDevice } from '../block/device.js';
import type { Mutable } from '../core/mutable.js';
import type { BlockStatus } from '../block/block-status.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';

/** One extent of `qemu-img map --output=json`. */
export interface MapEntry {
  /** First guest byte. */
  readonly start: number;
  /** Length in bytes. */
  readonly length: number;
  /** Chain depth that answered (0 = top; the bottom layer when nobody allocates it). */
  readonly depth: number;
  /** Some layer allocates the range. */
  readonly present: boolean;
  /** Reads as zeros. */
  readonly zero: boolean;
  /** Stored as data. */
  readonly data: boolean;
  /** Host offset of the data, when it sits uncompressed in a file. */
  readonly offset?: number | undefined;
  /** The file holding the data, when `offset` is set. */
  readonly filename?: string | undefined;
}

/** Options of {@link map}. */
export interface MapOptions extends Omit<OpenImageOptions, 'readOnly'> {
  /** First byte to map (`--start-offset`). */
  startOffset?: number | undefined;
  /** Most bytes to map (`--max-length`). */
  maxLength?: number | undefined;
  /** Stops the walk. */
  signal?: AbortSignal | undefined;
}

const MAX_STATUS_REQUEST = 1 << 30;
/** Entries handed over at once: a dense image has tens of thousands, and one await each would be most of the walk's cost. */
const BATCH_ENTRIES = 1024;

/** An entry still growing while the runs that follow merge into it. */
type OpenEntry = Mutable<MapEntry>;

function entryOf(dev: BlockDevice, st: BlockStatus): OpenEntry {
  const hasOffset = st.hostOffset !== undefined && st.store !== undefined;
  return {
    start: st.offset,
    length: st.length,
    depth: st.depth,
    present: st.present,
    zero: st.zero,
    data: st.data,
    offset: hasOffset ? st.hostOffset : undefined,
    filename: hasOffset ? (dev.layerOf(st.store)?.path ?? st.store?.name) : undefined,
  };
}

function mergeable(a: MapEntry, b: MapEntry): boolean {
  if (a.zero !== b.zero || a.data !== b.data || a.depth !== b.depth || a.present !== b.present) return false;
  if ((a.offset === undefined) !== (b.offset === undefined) || a.filename !== b.filename) return false;
  return a.offset === undefined || a.offset + a.length === b.offset;
}

/** A block status failure in qemu-img map's words ("Could not read file metadata: ..."), marked so the CLI can tell it from an open failure (qemu has printed its header by then). */
function metadataError(err: unknown): unknown {
  if (!(err instanceof VdiskError) || err.code === 'EABORTED') return err;
  return err.rephrase(`Could not read file metadata: ${err.message}`, { stage: 'block-status' });
}

/**
 * Walks an open device's merged extents, handed over in batches. The
 * entries completed before a failing block status are handed over before
 * the failure, as qemu-img prints them before its error.
 */
async function* mapDevice(dev: BlockDevice, options: Pick<MapOptions, 'startOffset' | 'maxLength' | 'signal'> = {}): AsyncGenerator<MapEntry[]> {
  const start = options.startOffset ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw new InvalidArgumentError('Invalid start offset specified');
  const max = options.maxLength;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) throw new InvalidArgumentError('Invalid max length specified');
  const end = Math.min(dev.size, options.maxLength === undefined ? Infinity : start + options.maxLength);
  let batch: MapEntry[] = [];
  let curr: OpenEntry | undefined;
  try {
    for (let offset = start; offset < end; ) {
      throwIfAborted(options.signal);
      const soon = dev.statusSoon(offset, Math.min(end - offset, MAX_STATUS_REQUEST), metadataError);
      const next = entryOf(dev, soon instanceof Promise ? await soon : soon);
      offset += next.length;
      if (curr && mergeable(curr, next)) {
        curr.length += next.length;
        continue;
      }
      if (curr) batch.push(curr);
      curr = next;
      if (batch.length >= BATCH_ENTRIES) {
        yield batch;
        batch = [];
      }
    }
  } catch (err) {
    if (batch.length > 0) yield batch;
    throw err;
  }
  if (curr) batch.push(curr);
  if (batch.length > 0) yield batch;
}

/**
 * {@link map}'s extents in batches (arrays of consecutive entries): the
 * same walk without one await per entry, for callers that print or store
 * tens of thousands of them (the CLI; the main entry keeps {@link map}).
 */
export async function* mapBatches(filename: ImageTarget, options: MapOptions = {}): AsyncGenerator<MapEntry[]> {
  const dev = await BlockDevice.open(filename, { ...options, readOnly: true });
  try {
    yield* mapDevice(dev, options);
  } finally {
    await dev.close();
  }
}

/**
 * The image's extents as `qemu-img map` reports them, as an async iterable.
 *
 * @example
 * ```ts
 * for await (const e of map('disk.qcow2')) if (e.data) console.log(e.start, e.length, e.offset);
 * ```
 */
export async function* map(filename: ImageTarget, options: MapOptions = {}): AsyncGenerator<MapEntry> {
  for await (const batch of mapBatches(filename, options)) yield* batch;
}

/** All of {@link map}'s extents in an array. */
export async function mapAll(filename: ImageTarget, options: MapOptions = {}): Promise<MapEntry[]> {
  const out: MapEntry[] = [];
  for await (const batch of mapBatches(filename, options)) out.push(...batch);
  return out;
}
