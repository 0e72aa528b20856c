/**
 * The VHD dynamic disk header (1024 bytes, big-endian, cookie `cxsparse`)
 * of dynamic and differencing disks, with the parent fields differencing
 * disks use. Pure functions over bytes.
 *
 * Layout (VHD spec, "Dynamic Disk Header Format"):
 * ```
 *   0  cookie "cxsparse"          8     40  parent unique id        16
 *   8  data offset u64 (unused)   8     56  parent time stamp u32    4
 *  16  table (BAT) offset u64     8     60  reserved                 4
 *  24  header version u32         4     64  parent name, UTF-16BE  512
 *  28  max table entries u32      4    576  8 parent locators × 24 bytes:
 *  32  block size u32             4           platform code u32, data space u32,
 *  36  checksum u32               4           data length u32, reserved u32, data offset u64
 * ```
 */
import { readU64Safe } from '../../core/bytes.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { vhdChecksum } from './footer.js';

/** Size of the dynamic disk header. */
export const VHD_DYNAMIC_HEADER_SIZE = 1024;

const COOKIE = 'cxsparse';
/** Where the parent unique ID sits in the dynamic header. */
export const PARENT_UNIQUE_ID_AT = 40;
const CHECKSUM_AT = 36;
const LOCATORS_AT = 576;
const LOCATOR_SIZE = 24;

/** One parent locator entry. */
export interface ParentLocator {
  /** Platform code as 4 Latin-1 characters (`W2ru`, `W2ku`, `MacX`, ...). */
  readonly platform: string;
  readonly dataSpace: number;
  readonly dataLength: number;
  readonly dataOffset: number;
}

/** The dynamic disk header, decoded and checked. */
export interface DynamicHeader {
  readonly tableOffset: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
  /** Bytes of the sector bitmap before each block: one bit per sector, in whole sectors. */
  readonly bitmapSize: number;
  readonly parentUniqueId: Uint8Array;
  readonly parentTimestamp: number;
  /** Parent file name (UTF-16BE in the header), without trailing NULs. */
  readonly parentName: string;
  /** Locators with a platform code, in header order. */
  readonly locators: readonly ParentLocator[];
}

function fail(message: string, headerOffset: number, field: number): never {
  throw new CorruptImageError(message, { offset: headerOffset + field });
}

/** Decodes UTF-16BE, stopping at the first NUL. */
function decodeUtf16Be(bytes: Uint8Array): string {
  const swapped = new Uint8Array(bytes.length & ~1);
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    swapped[i] = bytes[i + 1] as number;
    swapped[i + 1] = bytes[i] as number;
  }
  return decodeUtf16Le(swapped);
}

/** Decodes UTF-16LE, stopping at the first NUL. */
export function decodeUtf16Le(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length & ~1).toString('utf16le');
  const nul = text.indexOf('\0');
  return nul >= 0 ? text.slice(0, nul) : text;
}

function parseLocators(buf: Uint8Array, v: DataView, headerOffset: number): ParentLocator[] {
  const out: ParentLocator[] = [];
  for (let i = 0; i < 8; i++) {
    const at = LOCATORS_AT + i * LOCATOR_SIZE;
    const code = v.getUint32(at);
    if (code === 0) continue;
    const dataOffset = readU64Safe(v, at + 16);
    if (dataOffset === undefined) fail(`VHD parent locator ${i} has a data offset above 2^53 - 1`, headerOffset, at + 16);
    out.push({
      platform: String.fromCharCode(...buf.subarray(at, at + 4)),
      dataSpace: v.getUint32(at + 4),
      dataLength: v.getUint32(at + 8),
      dataOffset,
    });
  }
  return out;
}

/**
 * Decodes and checks the dynamic disk header in `buf` (read at `headerOffset`).
 *
 * @throws {CorruptImageError} "Invalid header magic", "Invalid block size N"
 * @throws {UnsupportedError} a BAT offset above 2^53 - 1
 */
export function parseDynamicHeader(buf: Uint8Array, headerOffset: number): DynamicHeader {
  if (buf.length < VHD_DYNAMIC_HEADER_SIZE) fail('Invalid header magic', headerOffset, 0);
  if (String.fromCharCode(...buf.subarray(0, 8)) !== COOKIE) fail('Invalid header magic', headerOffset, 0);
  const v = new DataView(buf.buffer, buf.byteOffset, VHD_DYNAMIC_HEADER_SIZE);
  // The checksum is not verified, as qemu's vpc_open does not: every field used is checked on its own below.
  const tableOffset = readU64Safe(v, 16);
  if (tableOffset === undefined) {
    throw new UnsupportedError(`VHD BAT offset (dynamic header at offset ${headerOffset}) is above 2^53 - 1, which vdisk does not support`, { offset: headerOffset + 16 });
  }
  const blockSize = v.getUint32(32);
  if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) fail(`Invalid block size ${blockSize}`, headerOffset, 32);
  return {
    tableOffset,
    maxTableEntries: v.getUint32(28),
    blockSize,
    bitmapSize: Math.ceil(blockSize / (8 * 512) / 512) * 512,
    parentUniqueId: buf.slice(PARENT_UNIQUE_ID_AT, PARENT_UNIQUE_ID_AT + 16),
    parentTimestamp: v.getUint32(56),
    parentName: decodeUtf16Be(buf.subarray(64, 576)),
    locators: parseLocators(buf, v, headerOffset),
  };
}

/**
 * Checks the BAT geometry against the virtual size, as QEMU does (the BAT
 * must also lie inside the file, checked before it is read).
 *
 * @throws {CorruptImageError} "Too many blocks", "Page table too small", "Max Table Entries too large (N)"
 */
export function checkTableGeometry(h: DynamicHeader, virtualSize: number, headerOffset: number): void {
  if (Math.floor(virtualSize / h.blockSize) > 0xffffffff) fail('Too many blocks', headerOffset, 32);
  if (h.maxTableEntries * h.blockSize < virtualSize) fail('Page table too small', headerOffset, 28);
  if (h.maxTableEntries > LIMITS.vpcMaxTableEntries) fail(`Max Table Entries too large (${h.maxTableEntries | 0})`, headerOffset, 28);
}

/** What {@link serializeDynamicHeader} writes (QEMU's layout: BAT at 1536, version 1.0, no parent). */
export function serializeDynamicHeader(tableOffset: number, maxTableEntries: number, blockSize: number): Uint8Array {
  const buf = new Uint8Array(VHD_DYNAMIC_HEADER_SIZE);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < 8; i++) buf[i] = COOKIE.charCodeAt(i);
  v.setBigUint64(8, 0xffffffffffffffffn);
  v.setBigUint64(16, BigInt(tableOffset));
  v.setUint32(24, 0x00010000);
  v.setUint32(28, maxTableEntries);
  v.setUint32(32, blockSize);
  v.setUint32(CHECKSUM_AT, vhdChecksum(buf, CHECKSUM_AT));
  return buf;
}
