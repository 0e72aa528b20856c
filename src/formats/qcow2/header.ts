/**
 * qcow2 header and header extensions: pure parsing over bytes,
 * bounds-checked, with QEMU's messages for every limit it applies
 * (serializing is in header-write.ts, re-exported here).
 */
import { decodeName } from '../../core/byte-names.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import {
  AUTOCLEAR_BITMAPS,
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  EXT_BACKING_FORMAT,
  EXT_BITMAPS,
  EXT_CRYPTO,
  EXT_DATA_FILE,
  EXT_END,
  EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_KNOWN,
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  QCOW2_MAGIC,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH,
} from './layout.js';

export { QEMU_FEATURE_NAMES, serializeHeader } from './header-write.js';

/** One header extension kept as bytes (unknown ones are written back unchanged). */
export interface HeaderExtension {
  readonly type: number;
  readonly data: Uint8Array;
}

/** One entry of the feature name table. */
export interface FeatureName {
  readonly type: number;
  readonly bit: number;
  readonly name: string;
}

/** The bitmaps extension (directory pointer). */
export interface BitmapsExtension {
  readonly nbBitmaps: number;
  readonly directorySize: number;
  readonly directoryOffset: number;
}

/** A parsed qcow2 header. Feature words are bigints (64 bits on disk). */
export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  backingFile: string | undefined;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  /** v3 header bytes past the fields QEMU knows (112), kept on rewrite as QEMU keeps them. */
  unknownHeaderFields?: Uint8Array | undefined;
  compressionType: number;
  backingFormat: string | undefined;
  dataFile: string | undefined;
  featureNames: FeatureName[];
  bitmaps: BitmapsExtension | undefined;
  /** True when a bitmaps extension was present but its autoclear bit was clear (bitmaps inconsistent). */
  bitmapsIgnored: boolean;
  crypto: HeaderExtension | undefined;
  unknownExtensions: HeaderExtension[];
}

/** Byte positions of fields rewritten in place. */
export const HEADER_FIELD = {
  size: 24,
  l1Size: 36,
  l1TableOffset: 40,
  refcountTableOffset: 48,
  refcountTableClusters: 56,
  nbSnapshots: 60,
  snapshotsOffset: 64,
  incompatible: 72,
  compatible: 80,
  autoclear: 88,
} as const;

/** Writes one big-endian u64 header field (`pos` from HEADER_FIELD) in place. */
export async function writeHeaderU64(s: { readonly store: { write(offset: number, data: Uint8Array): Promise<void> } }, pos: number, value: bigint): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value);
  await s.store.write(pos, b);
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function corrupt(message: string, offset?: number): CorruptImageError {
  return new CorruptImageError(message, { offset });
}

/** Reads a u64 header field that is an offset or size; above 2^53 it is unsupported. */
function u64(view: DataView, pos: number, what: string): number {
  const v = view.getBigUint64(pos);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    if (v > 0x7fffffffffffffffn) throw corrupt(`${what} offset invalid`, pos);
    throw new UnsupportedError(`qcow2 ${what} (${v}) is above 2^53, the largest value vdisk supports`, { offset: pos });
  }
  return Number(v);
}

/**
 * Reads the cluster size from the first bytes of an image (at least 24),
 * after checking magic, version and cluster bits.
 */
export function peekClusterBits(head: Uint8Array): number {
  if (head.length < V2_HEADER_LENGTH) throw corrupt('Image is not in qcow2 format');
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw corrupt('Image is not in qcow2 format');
  const version = view.getUint32(4);
  if (version < 2 || version > 3) throw new UnsupportedError(`Unsupported qcow2 version ${version}`);
  const bits = view.getUint32(20);
  if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new UnsupportedError(`Unsupported cluster size: 2^${bits}`);
  }
  return bits;
}

/**
 * Parses the header cluster (the first cluster of the file, or as much of
 * it as the file has). Validates every field that sizes a later read.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export function parseHeader(cluster: Uint8Array): Qcow2Header {
  const clusterBits = peekClusterBits(cluster);
  const clusterSize = 2 ** clusterBits;
  const view = new DataView(cluster.buffer, cluster.byteOffset, cluster.byteLength);
  const version = view.getUint32(4) as 2 | 3;
  const h = parseFixed(view, version, clusterBits);
  if (h.headerLength > clusterSize) throw corrupt('qcow2 header exceeds cluster size');
  if (h.headerLength > cluster.length) throw corrupt('qcow2 header is truncated');
  if (h.backingFileOffset > clusterSize) throw corrupt('Invalid backing file offset', 8);
  const extEnd = Math.min(h.backingFileOffset !== 0 ? h.backingFileOffset : clusterSize, cluster.length);
  readExtensions(view, h, extEnd);
  checkIncompatible(h);
  if (h.refcountOrder > 6) throw new UnsupportedError('Reference count entry width too large; may not exceed 64 bits');
  checkCompressionType(h);
  readBackingName(cluster, h, clusterSize);
  return h;
}

function parseFixed(view: DataView, version: 2 | 3, clusterBits: number): Qcow2Header {
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(view, 8, 'Backing file name'),
    backingFileSize: view.getUint32(16),
    backingFile: undefined,
    clusterBits,
    size: 0,
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, 'Active L1 table'),
    refcountTableOffset: u64(view, 48, 'Reference count table'),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: u64(view, 64, 'Snapshot table'),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: COMPRESSION_ZLIB,
    backingFormat: undefined,
    dataFile: undefined,
    featureNames: [],
    bitmaps: undefined,
    bitmapsIgnored: false,
    crypto: undefined,
    unknownExtensions: [],
  };
  const size = view.getBigUint64(24);
  if (size > BigInt(LIMITS.maxOffset)) {
    throw new UnsupportedError(`Virtual size ${size} is above 2^53 - 1 bytes, the largest size vdisk supports`, { offset: 24 });
  }
  h.size = Number(size);
  if (version === 3) {
    if (view.byteLength < 104) throw corrupt('qcow2 header too short');
    h.incompatible = view.getBigUint64(72);
    h.compatible = view.getBigUint64(80);
    h.autoclear = view.getBigUint64(88);
    h.refcountOrder = view.getUint32(96);
    h.headerLength = view.getUint32(100);
    if (h.headerLength < 104) throw corrupt('qcow2 header too short');
    if (h.headerLength > 104 && view.byteLength > 104) h.compressionType = view.getUint8(104);
    if (h.headerLength > V3_HEADER_LENGTH) {
      const end = Math.min(h.headerLength, view.byteLength);
      h.unknownHeaderFields = new Uint8Array(view.buffer.slice(view.byteOffset + V3_HEADER_LENGTH, view.byteOffset + end));
    }
  }
  return h;
}

function readExtensions(view: DataView, h: Qcow2Header, end: number): void {
  let off = h.headerLength;
  while (off < end) {
    if (off + 8 > end) throw corrupt('Header extension too large', off);
    const type = view.getUint32(off);
    const len = view.getUint32(off + 4);
    off += 8;
    if (len > end - off || len > LIMITS.qcow2MaxHeaderExtensionBytes) throw corrupt('Header extension too large', off - 8);
    if (type === EXT_END) return;
    const data = new Uint8Array(view.buffer, view.byteOffset + off, len);
    applyExtension(h, type, data, off);
    off += Math.ceil(len / 8) * 8;
  }
}

function applyExtension(h: Qcow2Header, type: number, data: Uint8Array, off: number): void {
  switch (type) {
    case EXT_BACKING_FORMAT:
      if (data.length >= 16) throw corrupt(`ERROR: ext_backing_format: len=${data.length} too large (>=16)`, off);
      h.backingFormat = decoder.decode(data);
      return;
    case EXT_FEATURE_TABLE:
      h.featureNames = parseFeatureTable(data);
      return;
    case EXT_CRYPTO:
      h.crypto = { type, data: new Uint8Array(data) };
      return;
    case EXT_BITMAPS:
      parseBitmapsExt(h, data, off);
      return;
    case EXT_DATA_FILE:
      h.dataFile = decodeName(data);
      return;
    default:
      h.unknownExtensions.push({ type, data: new Uint8Array(data) });
  }
}

/** Entries as QEMU reads them: the extension zero-padded, so a partial last entry counts with what it has. */
function parseFeatureTable(data: Uint8Array): FeatureName[] {
  const padded = new Uint8Array(Math.ceil(data.length / 48) * 48);
  padded.set(data);
  const out: FeatureName[] = [];
  for (let p = 0; p < padded.length; p += 48) {
    const raw = padded.subarray(p + 2, p + 48);
    const nul = raw.indexOf(0);
    out.push({ type: padded[p] ?? 0, bit: padded[p + 1] ?? 0, name: decoder.decode(nul >= 0 ? raw.subarray(0, nul) : raw) });
  }
  return out;
}

function parseBitmapsExt(h: Qcow2Header, data: Uint8Array, off: number): void {
  if (data.length !== 24) throw corrupt('bitmaps_ext: Invalid extension length', off);
  if ((h.autoclear & BigInt(AUTOCLEAR_BITMAPS)) === 0n) {
    h.bitmapsIgnored = true;
    return;
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nbBitmaps = v.getUint32(0);
  if (v.getUint32(4) !== 0) throw corrupt('bitmaps_ext: Reserved field is not zero', off);
  if (nbBitmaps === 0) throw corrupt('found bitmaps extension with zero bitmaps', off);
  if (nbBitmaps > LIMITS.qcow2MaxBitmaps) {
    throw corrupt(`bitmaps_ext: Image has ${nbBitmaps} bitmaps, exceeding the QEMU supported maximum of ${LIMITS.qcow2MaxBitmaps}`, off);
  }
  const size = v.getBigUint64(8);
  if (size > BigInt(LIMITS.qcow2MaxBitmapDirectoryBytes)) {
    throw corrupt(`bitmaps_ext: bitmap directory size (${size}) exceeds the maximum supported size (${LIMITS.qcow2MaxBitmapDirectoryBytes})`, off);
  }
  const dirOff = v.getBigUint64(16);
  if (dirOff > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnsupportedError('Bitmap directory offset is above 2^53, the largest offset vdisk supports');
  if (Number(dirOff) % 2 ** h.clusterBits !== 0) throw corrupt('bitmaps_ext: invalid bitmap directory offset', off);
  h.bitmaps = { nbBitmaps, directorySize: Number(size), directoryOffset: Number(dirOff) };
}

/**
 * report_unsupported_feature: the names the image's table gives, in table
 * order up to its first nameless entry, then whatever no entry named as
 * one hex mask.
 */
function checkIncompatible(h: Qcow2Header): void {
  let mask = h.incompatible & ~BigInt(INCOMPAT_KNOWN);
  if (mask === 0n) return;
  const names: string[] = [];
  for (const f of h.featureNames) {
    if (f.name === '') break;
    // QEMU shifts 1ULL by the bit number; x86-64 uses its low six bits.
    const b = 1n << BigInt(f.bit & 63);
    if (f.type !== 0 || (mask & b) === 0n) continue;
    names.push(f.name);
    mask &= ~b;
  }
  if (mask !== 0n) names.push(`Unknown incompatible feature: ${mask.toString(16)}`);
  throw new UnsupportedError(`Unsupported qcow2 feature(s): ${names.join(', ')}`, { data: { incompatible: (h.incompatible & ~BigInt(INCOMPAT_KNOWN)).toString(16) } });
}

function checkCompressionType(h: Qcow2Header): void {
  const bit = (h.incompatible & BigInt(INCOMPAT_COMPRESSION)) !== 0n;
  if (h.compressionType !== COMPRESSION_ZLIB && h.compressionType !== COMPRESSION_ZSTD) {
    throw new UnsupportedError(`qcow2: unknown compression type: ${h.compressionType}`);
  }
  if (h.compressionType === COMPRESSION_ZLIB && bit) {
    throw corrupt('qcow2: Compression type incompatible feature bit must not be set');
  }
  if (h.compressionType !== COMPRESSION_ZLIB && !bit) {
    throw corrupt('qcow2: Compression type incompatible feature bit must be set');
  }
}

function readBackingName(cluster: Uint8Array, h: Qcow2Header, clusterSize: number): void {
  if (h.backingFileOffset === 0) return;
  const len = h.backingFileSize;
  if (len > Math.min(LIMITS.maxBackingNameBytes, clusterSize - h.backingFileOffset)) {
    throw corrupt('Backing file name too long', 16);
  }
  if (h.backingFileOffset + len > cluster.length) throw corrupt('Backing file name lies beyond the end of the file', 8);
  h.backingFile = decodeName(cluster.subarray(h.backingFileOffset, h.backingFileOffset + len));
}
