/**
 * The cloop V2.0 header: a 128-byte shell preamble, then big-endian
 * block size u32 (128), block count u32 (132) and n+1 u64 block offsets
 * (136). Checked in QEMU's order with its messages (block/cloop.c, iotest
 * 075); the offsets table is read only as far as the file goes (QEMU reads
 * the rest as zeros, which vdisk reproduces without allocating them).
 */
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { readHost } from '../read-only/common.js';

const BLOCK_SIZE_AT = 128;
const OFFSETS_AT = 136;
const SECTOR = 512;
const MAX_BLOCKS = Math.floor((0xffffffff - 1) / 8);

/** The checked header and offsets table. */
export interface CloopHeader {
  readonly blockSize: number;
  readonly blocks: number;
  /** Guest bytes: QEMU computes the sector count in 32 bits, so it wraps. */
  readonly virtualSize: number;
  /** The n+1 offsets (entries past the end of the file are zero). */
  readonly offsets: CloopOffsets;
}

/** The offsets table: the part inside the file, zeros after it. */
export class CloopOffsets {
  readonly #v: DataView;
  readonly count: number;

  constructor(inFile: Uint8Array, count: number) {
    this.#v = new DataView(inFile.buffer, inFile.byteOffset, inFile.byteLength);
    this.count = count;
  }

  /** High and low halves of entry `i` (zero past the file). */
  #parts(i: number): [number, number] {
    const at = i * 8;
    if (at + 8 > this.#v.byteLength) {
      // a partial entry at the end of the file: its bytes that exist, zeros after
      const b = new Uint8Array(8);
      for (let k = 0; at + k < this.#v.byteLength; k++) b[k] = this.#v.getUint8(at + k);
      const d = new DataView(b.buffer);
      return [d.getUint32(0, false), d.getUint32(4, false)];
    }
    return [this.#v.getUint32(at, false), this.#v.getUint32(at + 4, false)];
  }

  /** Entry `i` as a number; Infinity when beyond the exact range (it then reads as zeros). */
  get(i: number): number {
    const [hi, lo] = this.#parts(i);
    const v = hi * 2 ** 32 + lo;
    return Number.isSafeInteger(v) ? v : Infinity;
  }

  /**
   * `get(i) - get(i-1)`, exact while small; negative when the table goes
   * backwards (compared in 64 bits, as qemu does).
   */
  step(i: number): number {
    const [h1, l1] = this.#parts(i - 1);
    const [h2, l2] = this.#parts(i);
    if (h2 < h1 || (h2 === h1 && l2 < l1)) return -1;
    return (h2 - h1) * 2 ** 32 + (l2 - l1);
  }
}

function invalid(message: string, offset: number): never {
  throw new InvalidArgumentError(message, { offset });
}

/**
 * Reads and checks the header.
 *
 * @throws {InvalidArgumentError} / {@link CorruptImageError} with qemu's messages
 */
export async function readCloopHeader(store: ByteStore): Promise<CloopHeader> {
  const h = new DataView((await readHost(store, BLOCK_SIZE_AT, 8)).buffer);
  const blockSize = h.getUint32(0, false);
  if (blockSize % SECTOR) invalid(`block_size ${blockSize} must be a multiple of 512`, BLOCK_SIZE_AT);
  if (blockSize === 0) invalid('block_size cannot be zero', BLOCK_SIZE_AT);
  if (blockSize > LIMITS.cloopMaxBlockBytes) invalid(`block_size ${blockSize} must be ${LIMITS.cloopMaxBlockBytes / (1024 * 1024)} MB or less`, BLOCK_SIZE_AT);
  const blocks = h.getUint32(4, false);
  if (blocks > MAX_BLOCKS) invalid(`n_blocks ${blocks} must be ${MAX_BLOCKS} or less`, BLOCK_SIZE_AT + 4);
  // qemu computes the table size in 32 bits: n_blocks = MAX_BLOCKS wraps it to 0, which g_try_malloc refuses
  const tableBytes = ((blocks + 1) * 8) % 2 ** 32;
  if (tableBytes > LIMITS.cloopMaxOffsetsBytes) invalid('image requires too many offsets, try increasing block size', BLOCK_SIZE_AT + 4);
  if (tableBytes === 0) throw new UnsupportedError('Could not allocate offsets table');
  const inFile = Math.max(0, Math.min(tableBytes, (await store.size()) - OFFSETS_AT));
  const offsets = new CloopOffsets(await readHost(store, OFFSETS_AT, inFile), blocks + 1);
  for (let i = 1; i <= blocks; i++) {
    const step = offsets.step(i);
    if (step < 0) throw new CorruptImageError(`offsets not monotonically increasing at index ${i}, image file is corrupt`, { offset: OFFSETS_AT + 8 * i });
    if (step > LIMITS.cloopMaxCompressedBytes) throw new CorruptImageError(`invalid compressed block size at index ${i}, image file is corrupt`, { offset: OFFSETS_AT + 8 * i });
    // past the file every entry is zero: the rest of the table repeats this step
    if (i * 8 >= inFile + 8 && step === 0) break;
  }
  const sectors = (blocks * (blockSize / SECTOR)) % 2 ** 32;
  return { blockSize, blocks, virtualSize: sectors * SECTOR, offsets };
}
