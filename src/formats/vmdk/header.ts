/**
 * Sparse extent headers: VMDK4 (`KDMV`, hosted sparse and streamOptimized)
 * and VMDK3 (`COWD`, ESX sparse). Pure parse/serialize over bytes; every
 * field is checked against core/limits before anything is sized from it.
 */
import { alignUp } from '../../core/bytes.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import {
  CHECK_BYTES,
  COMPRESSION_DEFLATE,
  FLAG_MARKER,
  FLAG_RGD,
  FLAG_ZERO_GRAIN,
  GD_AT_END,
  HDR,
  MARKER_EOS,
  MARKER_FOOTER,
  SECTOR,
  VMDK3_MAGIC,
  VMDK4_MAGIC,
} from './layout.js';

/** The fields of a VMDK4 header, as numbers (sectors unless named bytes). */
export interface Vmdk4Header {
  readonly version: number;
  readonly flags: number;
  readonly capacity: number;
  readonly granularity: number;
  readonly descOffset: number;
  readonly descSize: number;
  readonly numGtesPerGt: number;
  readonly rgdOffset: number;
  /** Sector of the grain directory, or -1 for GD_AT_END. */
  readonly gdOffset: number;
  readonly grainOffset: number;
  readonly compressAlgorithm: number;
}

/** Geometry of a sparse extent's tables, validated. */
export interface SparseGeometry {
  /** Guest bytes the extent covers. */
  readonly capacityBytes: number;
  readonly grainBytes: number;
  readonly gtes: number;
  readonly gdEntries: number;
  /** Byte offsets; 0 = none. */
  readonly gdOffset: number;
  readonly rgdOffset: number;
  /** First byte after the extent's metadata (grainOffset). */
  readonly overheadBytes: number;
  readonly compressed: boolean;
  readonly markers: boolean;
  readonly zeroGrain: boolean;
  readonly version: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(v: DataView, off: number, what: string, file: string): number {
  const n = v.getBigUint64(off, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new UnsupportedError(`VMDK header field ${what} (${n}) is above 2^53 - 1, which vdisk does not support`, { file, offset: off });
  }
  return Number(n);
}

/** The magic of a sparse extent head, or 0. */
export function sparseMagic(head: Uint8Array): number {
  return head.length >= 4 ? view(head).getUint32(0, false) : 0;
}

/** Parses the VMDK4 header in `b` (at least 512 bytes, magic at 0). */
export function parseVmdk4Header(b: Uint8Array, file: string, base = 0): Vmdk4Header {
  if (b.length < HDR.size) throw new CorruptImageError('VMDK header is truncated', { file, offset: base });
  const v = view(b);
  if (v.getUint32(0, false) !== VMDK4_MAGIC) throw new CorruptImageError('Image not in VMDK format', { file, offset: base });
  const gdRaw = v.getBigUint64(HDR.gdOffset, true);
  return {
    version: v.getUint32(HDR.version, true),
    flags: v.getUint32(HDR.flags, true),
    capacity: u64(v, HDR.capacity, 'capacity', file),
    granularity: u64(v, HDR.granularity, 'grainSize', file),
    descOffset: u64(v, HDR.descOffset, 'descriptorOffset', file),
    descSize: u64(v, HDR.descSize, 'descriptorSize', file),
    numGtesPerGt: v.getUint32(HDR.numGtesPerGt, true),
    rgdOffset: u64(v, HDR.rgdOffset, 'rgdOffset', file),
    gdOffset: gdRaw === GD_AT_END ? -1 : u64(v, HDR.gdOffset, 'gdOffset', file),
    grainOffset: u64(v, HDR.grainOffset, 'overHead', file),
    compressAlgorithm: v.getUint16(HDR.compressAlgorithm, true),
  };
}

/** Serializes a VMDK4 header into one 512-byte sector. */
export function serializeVmdk4Header(h: Vmdk4Header): Uint8Array {
  const b = new Uint8Array(SECTOR);
  const v = view(b);
  v.setUint32(0, VMDK4_MAGIC, false);
  v.setUint32(HDR.version, h.version, true);
  v.setUint32(HDR.flags, h.flags, true);
  v.setBigUint64(HDR.capacity, BigInt(h.capacity), true);
  v.setBigUint64(HDR.granularity, BigInt(h.granularity), true);
  v.setBigUint64(HDR.descOffset, BigInt(h.descOffset), true);
  v.setBigUint64(HDR.descSize, BigInt(h.descSize), true);
  v.setUint32(HDR.numGtesPerGt, h.numGtesPerGt, true);
  v.setBigUint64(HDR.rgdOffset, BigInt(h.rgdOffset), true);
  v.setBigUint64(HDR.gdOffset, h.gdOffset < 0 ? GD_AT_END : BigInt(h.gdOffset), true);
  v.setBigUint64(HDR.grainOffset, BigInt(h.grainOffset), true);
  b.set(CHECK_BYTES, HDR.checkBytes);
  v.setUint16(HDR.compressAlgorithm, h.compressAlgorithm, true);
  return b;
}

/**
 * Checks the stream footer QEMU expects in the last 1536 bytes (footer
 * marker, footer header, end-of-stream marker) and returns the footer header.
 */
export function parseFooter(tail: Uint8Array, file: string, base: number): Vmdk4Header {
  const v = view(tail);
  const ok =
    tail.length === 3 * SECTOR &&
    v.getUint32(8, true) === 0 &&
    v.getUint32(12, true) === MARKER_FOOTER &&
    v.getUint32(SECTOR, false) === VMDK4_MAGIC &&
    v.getBigUint64(2 * SECTOR, true) === 0n &&
    v.getUint32(2 * SECTOR + 8, true) === 0 &&
    v.getUint32(2 * SECTOR + 12, true) === MARKER_EOS;
  if (!ok) throw new CorruptImageError('Invalid footer', { file, offset: base });
  const h = parseVmdk4Header(tail.subarray(SECTOR, 2 * SECTOR), file, base + SECTOR);
  if (h.gdOffset < 0) throw new CorruptImageError('Invalid footer: its grain directory offset is also at the end', { file, offset: base + SECTOR });
  return h;
}

/** Validates a VMDK4 header's table geometry as QEMU's vmdk_open_vmdk4 and vmdk_add_extent do. */
export function vmdk4Geometry(h: Vmdk4Header, fileBytes: number, readOnly: boolean, file: string): SparseGeometry {
  const compressed = h.compressAlgorithm === COMPRESSION_DEFLATE;
  if (h.version > 3) throw new UnsupportedError(`Unsupported VMDK version ${h.version}`, { file });
  if (h.version === 3 && !readOnly && !compressed) throw new UnsupportedError('VMDK version 3 must be read only', { file });
  if (h.numGtesPerGt > LIMITS.vmdkMaxGtesPerGt) throw new CorruptImageError('L2 table size too big', { file, offset: HDR.numGtesPerGt });
  if (h.granularity > LIMITS.vmdkMaxGrainSectors) throw new CorruptImageError('Invalid granularity, image may be corrupt', { file, offset: HDR.granularity });
  if (h.numGtesPerGt * h.granularity === 0) throw new CorruptImageError('L1 entry size is invalid', { file, offset: HDR.numGtesPerGt });
  // QEMU compares with the file length in whole sectors (bdrv_getlength rounds up)
  if (h.grainOffset * SECTOR > alignUp(fileBytes, SECTOR)) {
    throw new CorruptImageError(`File truncated, expecting at least ${h.grainOffset * SECTOR} bytes`, { file, offset: HDR.grainOffset });
  }
  return geometry(h.capacity, h.granularity, h.numGtesPerGt, h.gdOffset, (h.flags & FLAG_RGD) !== 0 ? h.rgdOffset : 0, h, file, compressed);
}

function geometry(capacity: number, granularity: number, gtes: number, gd: number, rgd: number, h: Vmdk4Header | undefined, file: string, compressed: boolean, gdEntries?: number): SparseGeometry {
  if (capacity > LIMITS.maxOffset / SECTOR) throw new UnsupportedError(`VMDK extent capacity ${capacity} sectors is above what vdisk supports`, { file });
  const entries = gdEntries ?? Math.ceil(capacity / (gtes * granularity));
  if (entries > LIMITS.vmdkMaxGdEntries) throw new UnsupportedError('L1 size too big', { file, data: { gdEntries: entries, limit: LIMITS.vmdkMaxGdEntries } });
  for (const [name, off] of [['gdOffset', gd], ['rgdOffset', rgd]] as const) {
    if (off * SECTOR + entries * 4 > LIMITS.maxOffset) throw new UnsupportedError(`VMDK ${name} ${off} is beyond what vdisk supports`, { file });
  }
  return {
    capacityBytes: capacity * SECTOR,
    grainBytes: granularity * SECTOR,
    gtes,
    gdEntries: entries,
    gdOffset: gd * SECTOR,
    rgdOffset: rgd * SECTOR,
    overheadBytes: (h?.grainOffset ?? 0) * SECTOR,
    compressed,
    markers: h ? (h.flags & FLAG_MARKER) !== 0 : false,
    zeroGrain: h ? (h.flags & FLAG_ZERO_GRAIN) !== 0 : false,
    version: h?.version ?? 3,
  };
}

/** Parses a VMDK3 (`COWD`) header: fixed 4096-entry grain tables, no redundant directory. */
export function vmdk3Geometry(b: Uint8Array, file: string): SparseGeometry {
  if (b.length < 44) throw new CorruptImageError('VMDK3 header is truncated', { file });
  const v = view(b);
  if (v.getUint32(0, false) !== VMDK3_MAGIC) throw new CorruptImageError('Image not in VMDK format', { file });
  const capacity = v.getUint32(12, true);
  const granularity = v.getUint32(16, true);
  const gd = v.getUint32(20, true);
  const gdEntries = v.getUint32(24, true);
  if (granularity > LIMITS.vmdkMaxGrainSectors) throw new CorruptImageError('Invalid granularity, image may be corrupt', { file, offset: 16 });
  if (granularity === 0) throw new CorruptImageError('L1 entry size is invalid', { file, offset: 16 });
  return geometry(capacity, granularity, 4096, gd, 0, undefined, file, false, gdEntries);
}
