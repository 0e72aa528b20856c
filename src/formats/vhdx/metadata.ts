/**
 * The metadata region (MS-VHDX 2.6): a 64 KiB table (`metadata`, entry
 * count ≤ 2047, 32-byte entries {item GUID, offset, length, flags}) and the
 * items it points at: file parameters, virtual disk size, page 83 data,
 * logical and physical sector size, and (differencing images) the parent
 * locator. Pure functions over bytes.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { readU64Safe } from '../../core/bytes.js';
import { LIMITS } from '../../core/limits.js';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  GUID_FILE_PARAMETERS,
  GUID_LOGICAL_SECTOR,
  GUID_PAGE83,
  GUID_PARENT_LOCATOR,
  GUID_PHYSICAL_SECTOR,
  GUID_VIRTUAL_DISK_SIZE,
  MAX_IMAGE_SIZE,
  META_IS_REQUIRED,
  META_IS_VIRTUAL_DISK,
  METADATA_TABLE_SIZE,
  PARAM_HAS_PARENT,
  PARAM_LEAVE_BLOCKS_ALLOCATED,
  SIG_METADATA,
  guidAt,
} from './constants.js';
import type { FileRange } from './region.js';
import { EINVAL, ENOTSUP } from './open-errno.js';

/** Most metadata table entries the spec allows. */
const MAX_METADATA_ENTRIES = 2047;

/** Where each known item lives (absolute file ranges). */
export interface MetadataLocations {
  readonly fileParameters: FileRange;
  readonly virtualDiskSize: FileRange;
  readonly page83: FileRange;
  readonly logicalSectorSize: FileRange;
  readonly physicalSectorSize: FileRange;
  readonly parentLocator?: FileRange | undefined;
}

type ItemKey = keyof MetadataLocations;

const ITEMS: readonly (readonly [ItemKey, Uint8Array, number])[] = [
  ['fileParameters', GUID_FILE_PARAMETERS, 8],
  ['virtualDiskSize', GUID_VIRTUAL_DISK_SIZE, 8],
  ['page83', GUID_PAGE83, 16],
  ['logicalSectorSize', GUID_LOGICAL_SECTOR, 4],
  ['physicalSectorSize', GUID_PHYSICAL_SECTOR, 4],
  ['parentLocator', GUID_PARENT_LOCATOR, 20],
];

/** Decodes the metadata table at the start of the metadata region. */
export function parseMetadataTable(buf: Uint8Array, region: FileRange): MetadataLocations {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < 8; i++) {
    if (buf[i] !== SIG_METADATA.charCodeAt(i)) throw new CorruptImageError('VHDX metadata table has a bad signature', { offset: region.offset, errno: EINVAL });
  }
  const count = v.getUint16(10, true);
  if (count > MAX_METADATA_ENTRIES || 32 + count * 32 > METADATA_TABLE_SIZE) {
    throw new CorruptImageError(`VHDX metadata table has ${count} entries (at most ${MAX_METADATA_ENTRIES})`, { offset: region.offset + 10, errno: EINVAL });
  }
  const found = new Map<ItemKey, FileRange>();
  for (let i = 0; i < count; i++) {
    const at = 32 + i * 32;
    const where = { offset: region.offset + at };
    const item = ITEMS.find(([, guid]) => guidAt(buf, at, guid));
    if (!item) {
      if (v.getUint32(at + 24, true) & META_IS_REQUIRED) throw new UnsupportedError(`VHDX metadata entry ${i} is a required item vdisk does not know`, { ...where, errno: ENOTSUP });
      continue;
    }
    const [key, , minLength] = item;
    if (found.has(key)) throw new CorruptImageError(`VHDX metadata table lists ${key} twice`, { ...where, errno: EINVAL });
    const offset = v.getUint32(at + 16, true);
    const length = v.getUint32(at + 20, true);
    if (length < minLength || offset + length > region.length) {
      throw new CorruptImageError(`VHDX metadata item ${key} [${offset}, +${length}) does not fit the metadata region`, where);
    }
    found.set(key, { offset: region.offset + offset, length });
  }
  const need = ITEMS.slice(0, 5).map(([k]) => k).filter((k) => !found.has(k));
  if (need.length > 0) throw new UnsupportedError(`VHDX metadata lacks required item ${need.join(', ')}`, { offset: region.offset, errno: ENOTSUP });
  return Object.fromEntries(found) as unknown as MetadataLocations;
}

/** The decoded image geometry. */
export interface VhdxMetadata {
  readonly blockSize: number;
  readonly leaveBlocksAllocated: boolean;
  readonly hasParent: boolean;
  readonly virtualDiskSize: number;
  readonly page83: Uint8Array;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
}

/** Raw bytes of each required item, as read from the file. */
export interface MetadataItems {
  readonly fileParameters: Uint8Array;
  readonly virtualDiskSize: Uint8Array;
  readonly page83: Uint8Array;
  readonly logicalSectorSize: Uint8Array;
  readonly physicalSectorSize: Uint8Array;
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Validates and decodes the required items. */
export function decodeMetadata(items: MetadataItems, where: MetadataLocations): VhdxMetadata {
  const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const blockSize = dv(items.fileParameters).getUint32(0, true);
  const flags = dv(items.fileParameters).getUint32(4, true);
  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || !isPow2(blockSize)) {
    throw new CorruptImageError(`VHDX block size ${blockSize} is not a power of two between 1 MiB and 256 MiB`, { offset: where.fileParameters.offset, errno: EINVAL });
  }
  const lss = dv(items.logicalSectorSize).getUint32(0, true);
  // qemu 7.2 takes 512 alone (ENOTSUP); vdisk reads 4096-byte sectors too.
  if (lss !== 512 && lss !== 4096) throw new CorruptImageError(`VHDX logical sector size ${lss} is neither 512 nor 4096`, { offset: where.logicalSectorSize.offset, errno: ENOTSUP });
  const pss = dv(items.physicalSectorSize).getUint32(0, true);
  const size = readU64Safe(dv(items.virtualDiskSize), 0, true);
  if (size === undefined || size > MAX_IMAGE_SIZE) {
    throw new UnsupportedError(`VHDX virtual disk size is larger than 64 TiB (the format's and vdisk's limit)`, { offset: where.virtualDiskSize.offset });
  }
  const hasParent = (flags & PARAM_HAS_PARENT) !== 0;
  if (hasParent && !where.parentLocator) throw new CorruptImageError('VHDX image has a parent but no parent locator', { offset: where.fileParameters.offset, errno: EINVAL });
  return {
    blockSize,
    leaveBlocksAllocated: (flags & PARAM_LEAVE_BLOCKS_ALLOCATED) !== 0,
    hasParent,
    virtualDiskSize: size,
    page83: items.page83.slice(0, 16),
    logicalSectorSize: lss,
    physicalSectorSize: pss,
  };
}

/** Checks a parent locator's length before it is read. */
export function checkParentLocatorSize(range: FileRange): void {
  if (range.length > LIMITS.vhdxMaxParentLocatorBytes) {
    throw new UnsupportedError(`VHDX parent locator of ${range.length} bytes exceeds vdisk's limit of ${LIMITS.vhdxMaxParentLocatorBytes} bytes`, { offset: range.offset });
  }
}

/** Everything serializeMetadata needs. */
export interface NewMetadata {
  readonly blockSize: number;
  readonly fixed: boolean;
  readonly virtualDiskSize: number;
  readonly sectorSize: number;
  readonly page83: Uint8Array;
  /** An encoded parent locator (differencing images). */
  readonly parentLocator?: Uint8Array | undefined;
}

/** The metadata table and the items placed right after it at 64 KiB, as qemu lays them out. */
export function serializeMetadata(m: NewMetadata): { table: Uint8Array; items: Uint8Array } {
  const table = new Uint8Array(METADATA_TABLE_SIZE);
  const tv = new DataView(table.buffer);
  for (let i = 0; i < 8; i++) table[i] = SIG_METADATA.charCodeAt(i);
  const parts: [Uint8Array, Uint8Array, number][] = [];
  const item = (n: number, fill: (v: DataView) => void): Uint8Array => {
    const b = new Uint8Array(n);
    fill(new DataView(b.buffer));
    return b;
  };
  const flags = (m.fixed ? PARAM_LEAVE_BLOCKS_ALLOCATED : 0) | (m.parentLocator ? PARAM_HAS_PARENT : 0);
  parts.push([GUID_FILE_PARAMETERS, item(8, (v) => (v.setUint32(0, m.blockSize, true), v.setUint32(4, flags, true))), META_IS_REQUIRED]);
  parts.push([GUID_VIRTUAL_DISK_SIZE, item(8, (v) => v.setBigUint64(0, BigInt(m.virtualDiskSize), true)), META_IS_REQUIRED | META_IS_VIRTUAL_DISK]);
  parts.push([GUID_PAGE83, m.page83.slice(0, 16), META_IS_REQUIRED | META_IS_VIRTUAL_DISK]);
  parts.push([GUID_LOGICAL_SECTOR, item(4, (v) => v.setUint32(0, m.sectorSize, true)), META_IS_REQUIRED | META_IS_VIRTUAL_DISK]);
  parts.push([GUID_PHYSICAL_SECTOR, item(4, (v) => v.setUint32(0, m.sectorSize, true)), META_IS_REQUIRED | META_IS_VIRTUAL_DISK]);
  if (m.parentLocator) parts.push([GUID_PARENT_LOCATOR, m.parentLocator, META_IS_REQUIRED]);
  tv.setUint16(10, parts.length, true);
  let offset = METADATA_TABLE_SIZE;
  const items = new Uint8Array(parts.reduce((n, [, b]) => n + b.length, 0));
  parts.forEach(([guid, bytes, f], i) => {
    const at = 32 + i * 32;
    table.set(guid, at);
    tv.setUint32(at + 16, offset, true);
    tv.setUint32(at + 20, bytes.length, true);
    tv.setUint32(at + 24, f, true);
    items.set(bytes, offset - METADATA_TABLE_SIZE);
    offset += bytes.length;
  });
  return { table, items };
}
