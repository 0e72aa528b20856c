/**
 * The Block Allocation Table (MS-VHDX 2.5): one u64 per payload block
 * (state in bits 0–2, file offset in MiB in bits 20–63), with one
 * sector-bitmap entry after every `chunkRatio` payload entries, where
 * chunkRatio = 2^23 × logical sector size / block size.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { MiB, SECTORS_PER_BITMAP } from './constants.js';

/** Sizes derived from the metadata. */
export interface BatGeometry {
  readonly blockSize: number;
  readonly logicalSectorSize: number;
  readonly sectorsPerBlock: number;
  readonly chunkRatio: number;
  readonly dataBlocks: number;
  /** Entries in the BAT, payload and sector-bitmap together. */
  readonly totalEntries: number;
}

/** Computes the BAT geometry (the spec's formulas; differencing images count every bitmap entry). */
export function batGeometry(virtualSize: number, blockSize: number, logicalSectorSize: number, hasParent: boolean): BatGeometry {
  const chunkRatio = (SECTORS_PER_BITMAP * logicalSectorSize) / blockSize;
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const bitmapBlocks = Math.ceil(dataBlocks / chunkRatio);
  let totalEntries: number;
  if (hasParent) totalEntries = bitmapBlocks * (chunkRatio + 1);
  else totalEntries = dataBlocks === 0 ? 0 : dataBlocks + Math.floor((dataBlocks - 1) / chunkRatio);
  return { blockSize, logicalSectorSize, sectorsPerBlock: blockSize / logicalSectorSize, chunkRatio, dataBlocks, totalEntries };
}

/** BAT index of payload block `block`. */
export function payloadIndex(g: BatGeometry, block: number): number {
  return block + Math.floor(block / g.chunkRatio);
}

/** BAT index of the sector-bitmap entry covering payload block `block`. */
export function bitmapIndex(g: BatGeometry, block: number): number {
  const chunk = Math.floor(block / g.chunkRatio);
  return chunk * (g.chunkRatio + 1) + g.chunkRatio;
}

/** Checks that the BAT fits its region and vdisk's memory cap; returns its byte length. */
export function checkBatSize(g: BatGeometry, regionLength: number, regionOffset: number): number {
  const bytes = g.totalEntries * 8;
  if (bytes > regionLength) {
    throw new CorruptImageError(`VHDX BAT needs ${g.totalEntries} entries but its region holds ${Math.floor(regionLength / 8)}`, { offset: regionOffset });
  }
  if (bytes > LIMITS.vhdxMaxBatBytes) {
    throw new UnsupportedError(`VHDX BAT of ${bytes} bytes exceeds vdisk's limit of ${LIMITS.vhdxMaxBatBytes} bytes (LIMITS.vhdxMaxBatBytes)`, { offset: regionOffset });
  }
  return bytes;
}

/** The in-memory BAT: the raw little-endian table, decoded on access. */
export class Bat {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  /** File offset of the table (for messages and write-back). */
  readonly fileOffset: number;

  constructor(bytes: Uint8Array, fileOffset: number) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.fileOffset = fileOffset;
  }

  get length(): number {
    return this.bytes.length / 8;
  }

  /** State bits of entry `i`. */
  state(i: number): number {
    return this.#view.getUint32(i * 8, true) & 7;
  }

  /** File offset of entry `i` in bytes, exact (checks compare it before it is used). */
  rawOffset(i: number): bigint {
    return this.#view.getBigUint64(i * 8, true) & ~0xfffffn;
  }

  /** File offset of entry `i` in bytes (0 when none). */
  offset(i: number): number {
    const lo = this.#view.getUint32(i * 8, true);
    const hi = this.#view.getUint32(i * 8 + 4, true);
    const mb = hi * 4096 + (lo >>> 20);
    const off = mb * MiB;
    if (!Number.isSafeInteger(off)) {
      throw new UnsupportedError(`VHDX BAT entry ${i} points beyond 2^53 bytes`, { offset: this.fileOffset + i * 8 });
    }
    return off;
  }

  /** Sets entry `i`; returns the 8 encoded bytes. */
  set(i: number, state: number, fileOffset: number): void {
    const mb = fileOffset / MiB;
    this.#view.setUint32(i * 8, (((mb % 4096) << 20) | state) >>> 0, true);
    this.#view.setUint32(i * 8 + 4, Math.floor(mb / 4096), true);
  }
}

