/**
 * qcow2 on-disk constants, entry bit masks and index math
 * (docs/interop/qcow2.rst). Entries are 64-bit big-endian; they are read as
 * two 32-bit halves so the hot paths never touch BigInt.
 */
import { UnsupportedError } from '../../core/errors.js';

export const QCOW2_MAGIC = 0x514649fb;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** Header bytes written by QEMU for v3 images (with the compression type byte). */
export const V3_HEADER_LENGTH = 112;
export const V2_HEADER_LENGTH = 72;

/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1;
export const INCOMPAT_CORRUPT = 2;
export const INCOMPAT_DATA_FILE = 4;
export const INCOMPAT_COMPRESSION = 8;
export const INCOMPAT_EXTL2 = 16;
export const INCOMPAT_KNOWN = 31;
/** Compatible feature bits. */
export const COMPAT_LAZY_REFCOUNTS = 1;
/** Autoclear feature bits. */
export const AUTOCLEAR_BITMAPS = 1;
export const AUTOCLEAR_DATA_FILE_RAW = 2;
export const AUTOCLEAR_KNOWN = 3;

/** Header extension magics. */
export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_BITMAPS = 0x23852875;
export const EXT_DATA_FILE = 0x44415441;

/** L1/L2 high-word flags. */
export const HI_COPIED = 0x80000000;
export const HI_COMPRESSED = 0x40000000;
/** Bits 32..55 of an offset field (the high word's low 24 bits). */
export const HI_OFFSET_MASK = 0x00ffffff;
/** Bits 9..31 of an offset field. */
export const LO_OFFSET_MASK = 0xfffffe00;
/** Low-word zero flag (standard L2 entries of v3 images). */
export const LO_ZERO = 1;
/** High words above this give offsets past 2^53, which vdisk does not address. */
const HI_SAFE_MAX = 0x1fffff;

/** Compression types. */
export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;

/** Geometry derived from the header, shared by every part of the driver. */
export interface Geometry {
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** True with extended L2 entries (16 bytes, 32 subclusters). */
  readonly extendedL2: boolean;
  readonly l2EntrySize: number;
  readonly l2Entries: number;
  readonly subclusterSize: number;
  readonly refcountOrder: number;
  readonly refcountBits: number;
  readonly refcountBlockEntries: number;
  /** Bit where a compressed descriptor's sector count starts. */
  readonly csizeShift: number;
}

/** Builds the geometry for a header's cluster bits, L2 mode and refcount order. */
export function makeGeometry(clusterBits: number, extendedL2: boolean, refcountOrder: number): Geometry {
  const clusterSize = 2 ** clusterBits;
  const l2EntrySize = extendedL2 ? 16 : 8;
  const refcountBits = 2 ** refcountOrder;
  return {
    clusterBits,
    clusterSize,
    extendedL2,
    l2EntrySize,
    l2Entries: clusterSize / l2EntrySize,
    subclusterSize: extendedL2 ? clusterSize / 32 : clusterSize,
    refcountOrder,
    refcountBits,
    refcountBlockEntries: (clusterSize * 8) / refcountBits,
    csizeShift: 62 - (clusterBits - 8),
  };
}

/** Host offset from an entry's two halves (bits 9..55), refusing offsets above 2^53. */
export function entryOffset(hi: number, lo: number, what: string): number {
  const h = hi & HI_OFFSET_MASK;
  if (h > HI_SAFE_MAX) {
    throw new UnsupportedError(`${what} points at a host offset above 2^53, the largest offset vdisk supports`);
  }
  return h * 0x100000000 + ((lo & LO_OFFSET_MASK) >>> 0);
}

/** Splits a host offset (< 2^56, 512-aligned) into the two halves of an entry. */
export function splitOffset(offset: number): { hi: number; lo: number } {
  return { hi: Math.floor(offset / 0x100000000) & HI_OFFSET_MASK, lo: offset % 0x100000000 >>> 0 };
}

/** Reads the two 32-bit halves of the 64-bit entry at `pos`. */
export function readEntry(view: DataView, pos: number): { hi: number; lo: number } {
  return { hi: view.getUint32(pos), lo: view.getUint32(pos + 4) };
}

/** Writes a 64-bit entry from its halves. */
export function writeEntry(view: DataView, pos: number, hi: number, lo: number): void {
  view.setUint32(pos, hi >>> 0);
  view.setUint32(pos + 4, lo >>> 0);
}

/** Number of L1 entries needed to map `size` guest bytes. */
export function l1EntriesFor(size: number, g: Geometry): number {
  const clusters = Math.ceil(size / g.clusterSize);
  return Math.ceil(clusters / g.l2Entries);
}

/** Decoded compressed descriptor: host byte offset and byte length of the stored data. */
export interface CompressedDescriptor {
  readonly hostOffset: number;
  readonly hostLength: number;
}

/** Decodes a compressed L2 entry (bits 0..x-1 offset, x..61 extra sectors). */
export function decodeCompressed(hi: number, lo: number, g: Geometry): CompressedDescriptor {
  const v = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo >>> 0);
  const shift = BigInt(g.csizeShift);
  const offset = v & ((1n << shift) - 1n);
  const sectors = Number(v >> shift) + 1;
  if (offset > BigInt(Number.MAX_SAFE_INTEGER - 2 * g.clusterSize)) {
    throw new UnsupportedError('Compressed cluster descriptor points at a host offset above 2^53, the largest offset vdisk supports');
  }
  const hostOffset = Number(offset);
  return { hostOffset, hostLength: sectors * 512 - (hostOffset % 512) };
}

/** Encodes a compressed L2 entry for data at `hostOffset` of `length` bytes. */
export function encodeCompressed(hostOffset: number, length: number, g: Geometry): { hi: number; lo: number } {
  const extra = Math.floor((hostOffset + length - 1) / 512) - Math.floor(hostOffset / 512);
  const v = (1n << 62n) | (BigInt(extra) << BigInt(g.csizeShift)) | BigInt(hostOffset);
  return { hi: Number(v >> 32n) >>> 0, lo: Number(v & 0xffffffffn) >>> 0 };
}

/** Subcluster bitmap helpers for extended L2 (low word: allocated, high word: zero). */
export function subclusterRange(first: number, count: number): number {
  if (count >= 32) return 0xffffffff;
  return ((2 ** count - 1) * 2 ** first) >>> 0;
}
