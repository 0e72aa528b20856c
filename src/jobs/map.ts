/**
 * map: the image's extents through the whole chain, merged exactly as
 * `qemu-img map` merges them (same zero/data/present/depth, contiguous host
 * offsets in the same file). Cost follows the allocated extents, not the
 * virtual size.
 */
import { throwIfAborted } from '../core/abort.js';
import { InvalidArgumentError, VdiskError } from '../core/errors.js';
import { BlockDevice } from '../block/device.js';
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

function entryOf(dev: BlockDevice, st: BlockStatus): MapEntry {
  const hasOffset = st.hostOffset !== undefined && st.store !== undefined;
  const layer = dev.layerOf(st.store);
  return {
    start: st.offset,
    length: st.length,
    depth: st.depth,
    present: st.present,
    zero: st.zero,
    data: st.data,
    offset: hasOffset ? st.hostOffset : undefined,
    filename: hasOffset ? (layer?.path ?? st.store?.name) : undefined,
  };
}

function mergeable(a: MapEntry, b: MapEntry): boolean {
  if (a.zero !== b.zero || a.data !== b.data || a.depth !== b.depth || a.present !== b.present) return false;
  if ((a.offset === undefined) !== (b.offset === undefined) || a.filename !== b.filename) return false;
  return a.offset === undefined || a.offset + a.length === b.offset;
}

/**
 * Block status of one run; a failure reads as qemu-img map words it
 * ("Could not read file metadata: ..."), marked so the CLI can tell it
 * from an open failure (qemu has printed its header by then).
 */
async function statusOf(dev: BlockDevice, offset: number, length: number): Promise<BlockStatus> {
  try {
    return await dev.blockStatus(offset, length);
  } catch (err) {
    if (!(err instanceof VdiskError) || err.code === 'EABORTED') throw err;
    throw err.rephrase(`Could not read file metadata: ${err.message}`, { stage: 'block-status' });
  }
}

/** Walks an open device's merged extents. */
async function* mapDevice(dev: BlockDevice, options: Pick<MapOptions, 'startOffset' | 'maxLength' | 'signal'> = {}): AsyncGenerator<MapEntry> {
  const start = options.startOffset ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw new InvalidArgumentError('Invalid start offset specified');
  const max = options.maxLength;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) throw new InvalidArgumentError('Invalid max length specified');
  const end = Math.min(dev.size, options.maxLength === undefined ? Infinity : start + options.maxLength);
  let curr: MapEntry | undefined;
  for (let offset = start; offset < end; ) {
    throwIfAborted(options.signal);
    const next = entryOf(dev, await statusOf(dev, offset, Math.min(end - offset, MAX_STATUS_REQUEST)));
    offset += next.length;
    if (curr && mergeable(curr, next)) {
      curr = { ...curr, length: curr.length + next.length };
      continue;
    }
    if (curr) yield curr;
    curr = next;
  }
  if (curr) yield curr;
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
  const dev = await BlockDevice.open(filename, { ...options, readOnly: true });
  try {
    yield* mapDevice(dev, options);
  } finally {
    await dev.close();
  }
}

/** All of {@link map}'s extents in an array. */
export async function mapAll(filename: ImageTarget, options: MapOptions = {}): Promise<MapEntry[]> {
  const out: MapEntry[] = [];
  for await (const e of map(filename, options)) out.push(e);
  return out;
}
