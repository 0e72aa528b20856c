/**
 * The Bochs growing-redolog header (512 bytes, little-endian) and its
 * catalog, checked in QEMU's order with its messages (block/bochs.c,
 * iotest 078).
 *
 * ```
 *  0 magic[32] "Bochs Virtual HD Image"   68 header size u32 (catalog offset)
 * 32 type[16] "Redolog"                    72 catalog entries u32
 * 48 subtype[16] "Growing"                 76 bitmap bytes u32
 * 64 version u32 (1.0 or 2.0)              80 extent bytes u32
 * v1: 84 disk size u64;  v2: 84 reserved u32, 88 disk size u64
 * ```
 *
 * Each allocated extent is a sector bitmap (whole sectors) then the
 * extent's sectors, at data offset + catalog entry × their size.
 */
import { CorruptImageError, InvalidArgumentError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { readHost } from '../read-only/common.js';
import { probeBochs } from './probe.js';

const HEADER_SIZE = 512;
const SECTOR = 512;
const V1 = 0x00010000;

/** The checked header and the catalog. */
export interface BochsHeader {
  readonly virtualSize: number;
  /** Entry per extent: its slot in the data area, 0xffffffff when unallocated. */
  readonly catalog: Uint32Array;
  /** Start of the data area (qemu's 32-bit sum: header size + catalog bytes). */
  readonly dataOffset: number;
  readonly bitmapBlocks: number;
  readonly extentBlocks: number;
  readonly extentSize: number;
}

/**
 * Reads and checks the header and catalog.
 *
 * @throws {InvalidArgumentError} / {@link CorruptImageError} with qemu's messages
 */
export async function readBochsHeader(store: ByteStore): Promise<BochsHeader> {
  const head = await readHost(store, 0, HEADER_SIZE);
  if (probeBochs(head) === 0) throw new InvalidArgumentError('Image not in Bochs format', { offset: 0 });
  const v = new DataView(head.buffer);
  const disk = v.getBigUint64(v.getUint32(64, true) === V1 ? 84 : 88, true);
  const totalSectors = disk / BigInt(SECTOR);
  const entries = v.getUint32(72, true);
  if (entries > LIMITS.bochsMaxCatalogEntries) throw new CorruptImageError('Catalog size is too large', { offset: 72 });
  const headerSize = v.getUint32(68, true);
  const catalog = new Uint32Array(entries);
  const raw = new DataView((await readHost(store, headerSize, entries * 4)).buffer);
  for (let i = 0; i < entries; i++) catalog[i] = raw.getUint32(i * 4, true);
  // qemu's fields are u32: a zero bitmap size wraps to 2^23 blocks
  const bitmapBlocks = 1 + Math.floor(((v.getUint32(76, true) - 1) >>> 0) / SECTOR);
  const extentSize = v.getUint32(80, true);
  if (extentSize < SECTOR) throw new InvalidArgumentError('Extent size must be at least 512', { offset: 80 });
  if ((extentSize & (extentSize - 1)) !== 0) throw new InvalidArgumentError(`Extent size ${extentSize} is not a power of two`, { offset: 80 });
  if (extentSize > LIMITS.bochsMaxExtentBytes) throw new InvalidArgumentError(`Extent size ${extentSize} is too large`, { offset: 80 });
  const perExtent = BigInt(extentSize / SECTOR);
  if (BigInt(entries) < (totalSectors + perExtent - 1n) / perExtent) throw new CorruptImageError('Catalog size is too small for this disk size', { offset: 72 });
  return {
    // bounded by the catalog check: at most 2^20 extents of 8 MiB
    virtualSize: Number(totalSectors) * SECTOR,
    catalog,
    dataOffset: (headerSize + entries * 4) >>> 0,
    bitmapBlocks,
    extentBlocks: extentSize / SECTOR,
    extentSize,
  };
}
