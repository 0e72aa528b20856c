/**
 * The QED header (docs/interop/qed_spec.txt, little-endian, 64 bytes at
 * offset 0) and the geometry it implies. Pure functions: decode, validate
 * in qemu's open order with its messages, encode.
 *
 * ```
 *  0 magic 'QED\0'     16 features u64          40 l1_table_offset u64
 *  4 cluster_size u32  24 compat_features u64   48 image_size u64
 *  8 table_size u32    32 autoclear_features    56 backing_filename_offset u32
 * 12 header_size u32       u64                  60 backing_filename_size u32
 * ```
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

export const QED_MAGIC = 0x00444551;
export const QED_HEADER_SIZE = 64;
/** Feature bits: a backing file is named; the image is not known clean; the backing file is raw (no probing). */
export const QED_F_BACKING_FILE = 0x1n;
export const QED_F_NEED_CHECK = 0x2n;
export const QED_F_BACKING_FORMAT_NO_PROBE = 0x4n;
const QED_FEATURE_MASK = 0x7n;
export const QED_MIN_CLUSTER_SIZE = 4096;
export const QED_MAX_CLUSTER_SIZE = 64 * 1024 * 1024;
export const QED_DEFAULT_CLUSTER_SIZE = 65536;
export const QED_MIN_TABLE_SIZE = 1;
export const QED_MAX_TABLE_SIZE = 16;
export const QED_DEFAULT_TABLE_SIZE = 4;
/** Longest backing file name qemu reads (its backing_file buffer, less the NUL). */
export const QED_MAX_BACKING_NAME = 4095;
/** Table entry values with a meaning of their own. */
export const QED_UNALLOCATED = 0;
export const QED_ZERO_CLUSTER = 1;

/** The decoded header (64-bit fields as bigint; the geometry as numbers once validated). */
export interface QedHeader {
  clusterSize: number;
  tableSize: number;
  headerSize: number;
  features: bigint;
  compatFeatures: bigint;
  autoclearFeatures: bigint;
  l1TableOffset: bigint;
  imageSize: bigint;
  backingNameOffset: number;
  backingNameSize: number;
}

/** Index math of a validated header. */
export interface QedGeometry {
  readonly clusterSize: number;
  /** Clusters per table. */
  readonly tableSize: number;
  /** Bytes per L1 or L2 table. */
  readonly tableBytes: number;
  /** Entries per table. */
  readonly entries: number;
  /** Guest bytes one L2 table covers. */
  readonly l2Span: number;
  /** First byte past the header clusters: no data or table may start before it. */
  readonly headerBytes: number;
}

/** Decodes the 64 header bytes (no checks). */
export function decodeQedHeader(b: Uint8Array): { magic: number; header: QedHeader } {
  const v = new DataView(b.buffer, b.byteOffset, QED_HEADER_SIZE);
  return {
    magic: v.getUint32(0, true),
    header: {
      clusterSize: v.getUint32(4, true),
      tableSize: v.getUint32(8, true),
      headerSize: v.getUint32(12, true),
      features: v.getBigUint64(16, true),
      compatFeatures: v.getBigUint64(24, true),
      autoclearFeatures: v.getBigUint64(32, true),
      l1TableOffset: v.getBigUint64(40, true),
      imageSize: v.getBigUint64(48, true),
      backingNameOffset: v.getUint32(56, true),
      backingNameSize: v.getUint32(60, true),
    },
  };
}

/** Encodes the 64 header bytes. */
export function encodeQedHeader(h: QedHeader): Uint8Array {
  const b = new Uint8Array(QED_HEADER_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, QED_MAGIC, true);
  v.setUint32(4, h.clusterSize, true);
  v.setUint32(8, h.tableSize, true);
  v.setUint32(12, h.headerSize, true);
  v.setBigUint64(16, h.features, true);
  v.setBigUint64(24, h.compatFeatures, true);
  v.setBigUint64(32, h.autoclearFeatures, true);
  v.setBigUint64(40, h.l1TableOffset, true);
  v.setBigUint64(48, h.imageSize, true);
  v.setUint32(56, h.backingNameOffset, true);
  v.setUint32(60, h.backingNameSize, true);
  return b;
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** qemu's qed_is_cluster_size_valid. */
export function isClusterSizeValid(n: number): boolean {
  return n >= QED_MIN_CLUSTER_SIZE && n <= QED_MAX_CLUSTER_SIZE && isPow2(n);
}

/** qemu's qed_is_table_size_valid. */
export function isTableSizeValid(n: number): boolean {
  return n >= QED_MIN_TABLE_SIZE && n <= QED_MAX_TABLE_SIZE && isPow2(n);
}

/**
 * qemu's qed_max_image_size, in uint64_t arithmetic: it wraps for the
 * largest geometries (64 MiB clusters, 16-cluster tables give 2^80 → 0),
 * and qemu compares against the wrapped value.
 */
export function qedMaxImageSize(clusterSize: number, tableSize: number): bigint {
  const entries = BigInt(tableSize * clusterSize) / 8n;
  return BigInt.asUintN(64, entries * BigInt(clusterSize) * entries);
}

/** qemu's qed_is_image_size_valid: a sector multiple no larger than the geometry allows. */
export function isImageSizeValid(size: bigint, clusterSize: number, tableSize: number): boolean {
  return size % 512n === 0n && size <= qedMaxImageSize(clusterSize, tableSize);
}

/** The index math of a header whose cluster and table sizes are valid. */
function qedGeometry(h: Pick<QedHeader, 'clusterSize' | 'tableSize' | 'headerSize'>): QedGeometry {
  const tableBytes = h.clusterSize * h.tableSize;
  const entries = tableBytes / 8;
  return { clusterSize: h.clusterSize, tableSize: h.tableSize, tableBytes, entries, l2Span: entries * h.clusterSize, headerBytes: h.headerSize * h.clusterSize };
}

/**
 * qemu's qed_check_cluster_offset: cluster-aligned, past the header and
 * before `fileSize` (the file length rounded down to whole clusters, grown
 * by every allocation).
 */
export function isClusterOffsetValid(g: QedGeometry, fileSize: number, offset: number): boolean {
  return offset % g.clusterSize === 0 && offset >= g.headerBytes && offset < fileSize;
}

/**
 * qemu's qed_check_table_offset: the first and last cluster of the table
 * valid. Its overflow test (`end <= offset`) also refuses every table of
 * one cluster, so images made with `table_size=1` do not open in qemu.
 */
export function isTableOffsetValid(g: QedGeometry, fileSize: number, offset: number): boolean {
  const end = offset + (g.tableSize - 1) * g.clusterSize;
  if (end <= offset) return false;
  return isClusterOffsetValid(g, fileSize, offset) && isClusterOffsetValid(g, fileSize, end);
}

/** A 64-bit field as a number, or Infinity when it is past what vdisk (and any file) can address. */
export function u64(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(n);
}

/** The validated header of an open image. */
export interface ValidHeader {
  readonly header: QedHeader;
  readonly geometry: QedGeometry;
  readonly imageSize: number;
  readonly l1Offset: number;
  /** The file length rounded down to whole clusters (where allocation starts). */
  readonly fileSize: number;
}

/**
 * Checks a header in qemu's open order (bdrv_qed_do_open) with its
 * messages; the backing name bounds are checked by the caller, which reads it.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export function validateQedHeader(magic: number, h: QedHeader, fileLength: number): ValidHeader {
  if (magic !== QED_MAGIC) throw new CorruptImageError('Image not in QED format', { offset: 0 });
  const unknown = h.features & ~QED_FEATURE_MASK;
  if (unknown) throw new UnsupportedError(`Unsupported QED features: ${unknown.toString(16)}`, { offset: 16 });
  if (!isClusterSizeValid(h.clusterSize)) throw new CorruptImageError('QED cluster size is invalid', { offset: 4 });
  const fileSize = fileLength - (fileLength % h.clusterSize);
  if (!isTableSizeValid(h.tableSize)) throw new CorruptImageError('QED table size is invalid', { offset: 8 });
  if (!isImageSizeValid(h.imageSize, h.clusterSize, h.tableSize)) throw new CorruptImageError('QED image size is invalid', { offset: 48 });
  const geometry = qedGeometry(h);
  const l1Offset = u64(h.l1TableOffset);
  if (!isTableOffsetValid(geometry, fileSize, l1Offset)) throw new CorruptImageError('QED table offset is invalid', { offset: 40 });
  if (h.headerSize > Math.floor(0xffffffff / h.clusterSize)) throw new CorruptImageError('QED header size is too large', { offset: 12 });
  const imageSize = u64(h.imageSize);
  if (imageSize > LIMITS.maxOffset) {
    throw new UnsupportedError(`QED image size ${h.imageSize} is larger than vdisk supports (2^53 - 1)`, { offset: 48 });
  }
  return { header: h, geometry, imageSize, l1Offset, fileSize };
}
