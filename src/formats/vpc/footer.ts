/**
 * The VHD hard disk footer (512 bytes, big-endian): at the end of every
 * VHD, with a copy at offset 0 in dynamic and differencing disks. Pure
 * functions over bytes.
 *
 * Layout (Virtual Hard Disk Image Format Specification, "Hard Disk Footer Format"):
 * ```
 *   0  cookie "conectix"        8      40  original size u64     8
 *   8  features u32             4      48  current size u64      8
 *  12  file format version u32  4      56  cylinders u16         2
 *  16  data offset u64          8      58  heads u8              1
 *  24  timestamp u32            4      59  sectors/track u8      1
 *  28  creator application      4      60  disk type u32         4
 *  32  creator version u32      4      64  checksum u32          4
 *  36  creator host OS          4      68  unique id            16
 *                                      84  saved state u8        1   (rest reserved, zero)
 * ```
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { readU64Safe } from '../../core/bytes.js';

/** Size of the footer and of its copy at offset 0. */
export const VHD_FOOTER_SIZE = 512;
/** Seconds between the Unix epoch and the VHD epoch (2000-01-01 UTC). */
export const VHD_TIMESTAMP_BASE = 946684800;
/** `data offset` of a fixed disk: no further structure. */
const VHD_NO_OFFSET = 0xffffffffffffffffn;

/** Disk types (footer offset 60). */
export const VHD_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;

/** CHS maxima of the VHD spec: 65535 cylinders × 16 heads × 255 sectors. */
export const VHD_MAX_GEOMETRY = 65535 * 16 * 255;

const COOKIE = [0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78]; // "conectix"
const CHECKSUM_AT = 64;

/** The footer fields vdisk uses, decoded. */
export interface VhdFooter {
  readonly features: number;
  readonly version: number;
  /** Offset of the dynamic disk header; undefined for `0xFFFFFFFFFFFFFFFF` (fixed disks). */
  readonly dataOffset: number | undefined;
  readonly timestamp: number;
  /** Creator application, 4 bytes as Latin-1 (`vpc `, `qemu`, `qem2`, `win `, `d2v `, `tap\0`, ...). */
  readonly creatorApp: string;
  readonly currentSize: number;
  readonly originalSize: number;
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  readonly diskType: number;
  readonly checksum: number;
  readonly uniqueId: Uint8Array;
}

/** True when `buf` starts with the `conectix` cookie. */
export function hasFooterCookie(buf: Uint8Array): boolean {
  if (buf.length < COOKIE.length) return false;
  for (let i = 0; i < COOKIE.length; i++) if (buf[i] !== COOKIE[i]) return false;
  return true;
}

/** One's complement of the byte sum of `buf`, with the 4 bytes at `skipAt` counted as zero. */
export function vhdChecksum(buf: Uint8Array, skipAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= skipAt && i < skipAt + 4) continue;
    sum = (sum + (buf[i] as number)) >>> 0;
  }
  return ~sum >>> 0;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function safe64(v: DataView, at: number, what: string, fileOffset: number): number {
  const n = readU64Safe(v, at);
  if (n === undefined) throw new UnsupportedError(`VHD footer ${what} at offset ${fileOffset + at} is above 2^53 - 1, which vdisk does not support`, { offset: fileOffset + at });
  return n;
}

/**
 * Decodes and checks the footer in `buf` (512 bytes read at `fileOffset`).
 *
 * @throws {CorruptImageError} no cookie, or a checksum mismatch ("Incorrect header checksum", as qemu words it)
 * @throws {UnsupportedError} a size field above 2^53 - 1
 */
export function parseFooter(buf: Uint8Array, fileOffset: number): VhdFooter {
  if (buf.length < VHD_FOOTER_SIZE || !hasFooterCookie(buf)) throw new CorruptImageError('invalid VPC image', { offset: fileOffset });
  const v = view(buf);
  const stored = v.getUint32(CHECKSUM_AT);
  const computed = vhdChecksum(buf.subarray(0, VHD_FOOTER_SIZE), CHECKSUM_AT);
  if (stored !== computed) {
    throw new CorruptImageError('Incorrect header checksum', {
      offset: fileOffset + CHECKSUM_AT,
      data: { finding: `the VHD footer at offset ${fileOffset} has checksum 0x${hex(stored)}, its bytes sum to 0x${hex(computed)}` },
    });
  }
  const rawOffset = v.getBigUint64(16);
  return {
    features: v.getUint32(8),
    version: v.getUint32(12),
    dataOffset: rawOffset === VHD_NO_OFFSET ? undefined : safe64(v, 16, 'data offset', fileOffset),
    timestamp: v.getUint32(24),
    creatorApp: String.fromCharCode(...buf.subarray(28, 32)),
    originalSize: safe64(v, 40, 'original size', fileOffset),
    currentSize: safe64(v, 48, 'current size', fileOffset),
    cylinders: v.getUint16(56),
    heads: buf[58] as number,
    sectorsPerTrack: buf[59] as number,
    diskType: v.getUint32(60),
    checksum: stored,
    uniqueId: buf.slice(68, 84),
  };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * The guest-visible size in sectors, as QEMU reads it: Virtual PC (`vpc `)
 * and old QEMU (`qemu`) size a disk by its CHS geometry, unless the geometry
 * is the maximum (then it cannot describe the disk); every other creator
 * (`win ` Hyper-V, `qem2`, `d2v `, `tap\0`, `CTXS`, Azure `wa\0\0`) records a
 * reliable current size. This is QEMU's rule since 10.0; 7.2 also took the
 * CHS size for creators it did not list (such as Azure's `wa\0\0`), which
 * truncated those disks.
 *
 * The `force_size_calc` open option picks one rule for every creator.
 *
 * @throws {UnsupportedError} sizes above 2040 GiB (QEMU's VHD_MAX_SECTORS)
 */
export function virtualSectors(f: VhdFooter, force?: 'chs' | 'current_size'): number {
  const chs = f.cylinders * f.heads * f.sectorsPerTrack;
  // `force_size_calc` overrides the creator table, but a maximal geometry always means current_size.
  const byCreator = f.creatorApp === 'vpc ' || f.creatorApp === 'qemu';
  const useChs = (force === undefined ? byCreator : force === 'chs') && chs !== VHD_MAX_GEOMETRY;
  const sectors = useChs ? chs : Math.floor(f.currentSize / 512);
  if (sectors > LIMITS.vpcMaxSectors) {
    throw new UnsupportedError(`VHD disk size of ${sectors * 512} bytes is above the format's maximum of 2040 GiB`, { offset: useChs ? 56 : 48 });
  }
  return sectors;
}

/** What {@link serializeFooter} writes. */
export interface FooterFields {
  readonly dataOffset: number | undefined;
  readonly timestamp: number;
  readonly creatorApp: string;
  readonly size: number;
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  readonly diskType: number;
  readonly uniqueId: Uint8Array;
}

/** Encodes a footer as QEMU writes one (creator version 5.3, host OS `Wi2k`), checksum included. */
export function serializeFooter(f: FooterFields): Uint8Array {
  const buf = new Uint8Array(VHD_FOOTER_SIZE);
  const v = view(buf);
  buf.set(COOKIE, 0);
  v.setUint32(8, 2);
  v.setUint32(12, 0x00010000);
  v.setBigUint64(16, f.dataOffset === undefined ? VHD_NO_OFFSET : BigInt(f.dataOffset));
  v.setUint32(24, f.timestamp >>> 0);
  for (let i = 0; i < 4; i++) buf[28 + i] = f.creatorApp.charCodeAt(i) & 0xff;
  v.setUint16(32, 5);
  v.setUint16(34, 3);
  buf.set([0x57, 0x69, 0x32, 0x6b], 36); // "Wi2k"
  v.setBigUint64(40, BigInt(f.size));
  v.setBigUint64(48, BigInt(f.size));
  v.setUint16(56, f.cylinders);
  buf[58] = f.heads;
  buf[59] = f.sectorsPerTrack;
  v.setUint32(60, f.diskType);
  buf.set(f.uniqueId.subarray(0, 16), 68);
  v.setUint32(CHECKSUM_AT, vhdChecksum(buf, CHECKSUM_AT));
  return buf;
}
