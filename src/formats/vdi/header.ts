/**
 * The VDI header (VirtualBox Virtual Disk Image, little-endian, 512 bytes
 * at offset 0). Pure functions: decode, validate in QEMU's order with its
 * messages, encode.
 *
 * ```
 *  0x000 text (64)              0x168 sector size u32
 *  0x040 signature 0xbeda107f   0x16C unused u32
 *  0x044 version 0x00010001     0x170 disk size u64
 *  0x048 header size (0x180)    0x178 block size u32 (1 MiB)
 *  0x04C image type u32         0x17C block extra u32
 *  0x050 image flags u32        0x180 blocks in image u32
 *  0x054 description (256)      0x184 blocks allocated u32
 *  0x154 offset bmap u32        0x188 UUID image, 0x198 UUID last snapshot,
 *  0x158 offset data u32        0x1A8 UUID link, 0x1B8 UUID parent (16 each)
 *  0x15C cylinders, 0x160 heads, 0x164 sectors (u32, unused)
 * ```
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** Size of the header sector. */
export const VDI_HEADER_SIZE = 512;
/** The signature at 0x40. */
export const VDI_SIGNATURE = 0xbeda107f;
/** The only version QEMU reads (1.1). */
const VDI_VERSION = 0x00010001;
/** The only block size QEMU reads. */
export const VDI_BLOCK_SIZE = 1024 * 1024;
/** Image types. */
export const VDI_TYPE = { dynamic: 1, static: 2 } as const;
/** Text QEMU writes at offset 0. */
const VDI_TEXT = '<<< QEMU VM Virtual Disk Image >>>\n';

/** Byte offsets of the fields vdisk reads or writes. */
export const VDI_FIELD = {
  signature: 0x40,
  version: 0x44,
  headerSize: 0x48,
  imageType: 0x4c,
  offsetBmap: 0x154,
  offsetData: 0x158,
  sectorSize: 0x168,
  diskSize: 0x170,
  blockSize: 0x178,
  blocksInImage: 0x180,
  blocksAllocated: 0x184,
  uuidImage: 0x188,
  uuidLastSnap: 0x198,
  uuidLink: 0x1a8,
  uuidParent: 0x1b8,
} as const;

/** The header fields vdisk uses, after validation. */
export interface VdiHeader {
  readonly imageType: number;
  readonly offsetBmap: number;
  readonly offsetData: number;
  /** Disk size in bytes, rounded up to whole sectors as QEMU does. */
  readonly diskSize: number;
  readonly blockSize: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
}

const SECTOR = 512;
const MIN_HEADER_SIZE = 0x180;
const MAX_HEADER_SIZE = VDI_HEADER_SIZE - VDI_FIELD.headerSize;

function hex(n: number | bigint, width = 0): string {
  return n.toString(16).padStart(width, '0');
}

function isNull(buf: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 16; i++) if (buf[i] !== 0) return false;
  return true;
}

function unsupported(message: string, field: number): never {
  throw new UnsupportedError(message, { offset: field });
}

/**
 * Decodes and validates the header against the file size, before anything
 * is sized from it. Checks come in QEMU's order, with its messages, then
 * vdisk's own (header size, block counts, offsets inside the file, block
 * map cap).
 *
 * @throws {UnsupportedError} what QEMU reports as not supported
 * @throws {CorruptImageError} a bad signature, or fields that contradict each other or the file
 */
export function parseVdiHeader(buf: Uint8Array, fileSize: number): VdiHeader {
  if (buf.length < VDI_HEADER_SIZE) throw new CorruptImageError(`File too small for a VDI header (${buf.length} bytes)`, { offset: 0 });
  const v = new DataView(buf.buffer, buf.byteOffset, VDI_HEADER_SIZE);
  const u32 = (at: number): number => v.getUint32(at, true);
  const rawSize = v.getBigUint64(VDI_FIELD.diskSize, true);
  if (rawSize > BigInt(LIMITS.vdiMaxDiskSize)) {
    unsupported(`Unsupported VDI image size (size is 0x${hex(rawSize)}, max supported is 0x${hex(LIMITS.vdiMaxDiskSize)})`, VDI_FIELD.diskSize);
  }
  const diskSize = Math.ceil(Number(rawSize) / SECTOR) * SECTOR;
  const signature = u32(VDI_FIELD.signature);
  if (signature !== VDI_SIGNATURE) throw new CorruptImageError(`Image not in VDI format (bad signature ${hex(signature, 8)})`, { offset: VDI_FIELD.signature });
  const version = u32(VDI_FIELD.version);
  if (version !== VDI_VERSION) unsupported(`unsupported VDI image (version ${version >>> 16}.${version & 0xffff})`, VDI_FIELD.version);
  const offsetBmap = u32(VDI_FIELD.offsetBmap);
  if (offsetBmap % SECTOR !== 0) unsupported(`unsupported VDI image (unaligned block map offset 0x${hex(offsetBmap)})`, VDI_FIELD.offsetBmap);
  const offsetData = u32(VDI_FIELD.offsetData);
  if (offsetData % SECTOR !== 0) unsupported(`unsupported VDI image (unaligned data offset 0x${hex(offsetData)})`, VDI_FIELD.offsetData);
  const sectorSize = u32(VDI_FIELD.sectorSize);
  if (sectorSize !== SECTOR) unsupported(`unsupported VDI image (sector size ${sectorSize} is not ${SECTOR})`, VDI_FIELD.sectorSize);
  const blockSize = u32(VDI_FIELD.blockSize);
  if (blockSize !== VDI_BLOCK_SIZE) unsupported(`unsupported VDI image (block size ${blockSize} is not ${VDI_BLOCK_SIZE})`, VDI_FIELD.blockSize);
  const blocksInImage = u32(VDI_FIELD.blocksInImage);
  if (diskSize > blocksInImage * blockSize) {
    unsupported(`unsupported VDI image (disk size ${diskSize}, image bitmap has room for ${blocksInImage * blockSize})`, VDI_FIELD.diskSize);
  }
  if (!isNull(buf, VDI_FIELD.uuidLink)) unsupported('unsupported VDI image (non-NULL link UUID)', VDI_FIELD.uuidLink);
  if (!isNull(buf, VDI_FIELD.uuidParent)) unsupported('unsupported VDI image (non-NULL parent UUID)', VDI_FIELD.uuidParent);
  if (blocksInImage > LIMITS.vdiMaxBlocksInImage) {
    unsupported(`unsupported VDI image (too many blocks ${blocksInImage}, max is ${LIMITS.vdiMaxBlocksInImage})`, VDI_FIELD.blocksInImage);
  }
  const header: VdiHeader = { imageType: u32(VDI_FIELD.imageType), offsetBmap, offsetData, diskSize, blockSize, blocksInImage, blocksAllocated: u32(VDI_FIELD.blocksAllocated) };
  checkLayout(header, u32(VDI_FIELD.headerSize), fileSize);
  return header;
}

/** vdisk's checks beyond QEMU's: header size, counts, and where the block map and data lie. */
function checkLayout(h: VdiHeader, headerSize: number, bytes: number): void {
  // the file counted in whole sectors, as QEMU's bdrv_getlength counts it
  const fileSize = Math.ceil(bytes / SECTOR) * SECTOR;
  if (headerSize < MIN_HEADER_SIZE || headerSize > MAX_HEADER_SIZE) {
    throw new CorruptImageError(`VDI header size 0x${hex(headerSize)} (offset 0x48) is outside 0x${hex(MIN_HEADER_SIZE)}..0x${hex(MAX_HEADER_SIZE)}`, { offset: VDI_FIELD.headerSize });
  }
  if (h.blocksAllocated > h.blocksInImage) {
    throw new CorruptImageError(`VDI header counts ${h.blocksAllocated} allocated blocks (offset 0x184) but the image has only ${h.blocksInImage}`, { offset: VDI_FIELD.blocksAllocated });
  }
  const bmapBytes = h.blocksInImage * 4;
  if (h.offsetBmap < VDI_HEADER_SIZE || h.offsetBmap + bmapBytes > fileSize) {
    throw new CorruptImageError(`VDI block map at offset 0x${hex(h.offsetBmap)} (${bmapBytes} bytes) is not between the header and the end of the file (${fileSize} bytes)`, {
      offset: VDI_FIELD.offsetBmap,
    });
  }
  if (h.offsetData < h.offsetBmap + bmapBytes || h.offsetData > fileSize) {
    throw new CorruptImageError(`VDI data offset 0x${hex(h.offsetData)} overlaps the block map or lies beyond the end of the file (${fileSize} bytes)`, { offset: VDI_FIELD.offsetData });
  }
}

/** What {@link serializeVdiHeader} writes. */
export interface VdiHeaderFields {
  readonly imageType: number;
  readonly offsetBmap: number;
  readonly offsetData: number;
  readonly diskSize: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
  readonly uuidImage: Uint8Array;
  readonly uuidLastSnap: Uint8Array;
}

/** Encodes a header as QEMU writes one. */
export function serializeVdiHeader(f: VdiHeaderFields): Uint8Array {
  const buf = new Uint8Array(VDI_HEADER_SIZE);
  const v = new DataView(buf.buffer);
  buf.set(Buffer.from(VDI_TEXT, 'latin1'), 0);
  v.setUint32(VDI_FIELD.signature, VDI_SIGNATURE, true);
  v.setUint32(VDI_FIELD.version, VDI_VERSION, true);
  v.setUint32(VDI_FIELD.headerSize, MIN_HEADER_SIZE, true);
  v.setUint32(VDI_FIELD.imageType, f.imageType, true);
  v.setUint32(VDI_FIELD.offsetBmap, f.offsetBmap, true);
  v.setUint32(VDI_FIELD.offsetData, f.offsetData, true);
  v.setUint32(VDI_FIELD.sectorSize, SECTOR, true);
  v.setBigUint64(VDI_FIELD.diskSize, BigInt(f.diskSize), true);
  v.setUint32(VDI_FIELD.blockSize, VDI_BLOCK_SIZE, true);
  v.setUint32(VDI_FIELD.blocksInImage, f.blocksInImage, true);
  v.setUint32(VDI_FIELD.blocksAllocated, f.blocksAllocated, true);
  buf.set(f.uuidImage.subarray(0, 16), VDI_FIELD.uuidImage);
  buf.set(f.uuidLastSnap.subarray(0, 16), VDI_FIELD.uuidLastSnap);
  return buf;
}
