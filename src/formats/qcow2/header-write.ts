/**
 * Serializing the qcow2 header cluster as QEMU's qcow2_update_header writes
 * it: the fixed fields, the extensions in QEMU's order (unknown ones kept),
 * then the backing file name.
 */
import { encodeName } from '../../core/byte-names.js';
import { UnsupportedError } from '../../core/errors.js';
import type { BitmapsExtension, FeatureName, Qcow2Header } from './header.js';
import { EXT_BACKING_FORMAT, EXT_BITMAPS, EXT_CRYPTO, EXT_DATA_FILE, EXT_FEATURE_TABLE, QCOW2_MAGIC, V2_HEADER_LENGTH, V3_HEADER_LENGTH } from './layout.js';

/** QEMU's feature name table (written into every v3 image with clusters over 4 KiB). */
export const QEMU_FEATURE_NAMES: readonly FeatureName[] = [
  { type: 0, bit: 0, name: 'dirty bit' },
  { type: 0, bit: 1, name: 'corrupt bit' },
  { type: 0, bit: 2, name: 'external data file' },
  { type: 0, bit: 3, name: 'compression type' },
  { type: 0, bit: 4, name: 'extended L2 entries' },
  { type: 1, bit: 0, name: 'lazy refcounts' },
  { type: 2, bit: 0, name: 'bitmaps' },
  { type: 2, bit: 1, name: 'raw external data' },
];

const encoder = new TextEncoder();

function extBytes(type: number, data: Uint8Array): Uint8Array {
  const padded = Math.ceil(data.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type);
  v.setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

function featureTableBytes(names: readonly FeatureName[]): Uint8Array {
  const out = new Uint8Array(names.length * 48);
  names.forEach((n, i) => {
    out[i * 48] = n.type;
    out[i * 48 + 1] = n.bit;
    out.set(encoder.encode(n.name).subarray(0, 46), i * 48 + 2);
  });
  return out;
}

function bitmapsExtBytes(b: BitmapsExtension): Uint8Array {
  const out = new Uint8Array(24);
  const v = new DataView(out.buffer);
  v.setUint32(0, b.nbBitmaps);
  v.setBigUint64(8, BigInt(b.directorySize));
  v.setBigUint64(16, BigInt(b.directoryOffset));
  return out;
}

function fixedBytes(h: Qcow2Header): Uint8Array {
  const out = new Uint8Array(h.headerLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, QCOW2_MAGIC);
  v.setUint32(4, h.version);
  v.setBigUint64(8, BigInt(h.backingFileOffset));
  v.setUint32(16, h.backingFileSize);
  v.setUint32(20, h.clusterBits);
  v.setBigUint64(24, BigInt(h.size));
  v.setUint32(32, h.cryptMethod);
  v.setUint32(36, h.l1Size);
  v.setBigUint64(40, BigInt(h.l1TableOffset));
  v.setBigUint64(48, BigInt(h.refcountTableOffset));
  v.setUint32(56, h.refcountTableClusters);
  v.setUint32(60, h.nbSnapshots);
  v.setBigUint64(64, BigInt(h.snapshotsOffset));
  if (h.version === 3) {
    v.setBigUint64(72, h.incompatible);
    v.setBigUint64(80, h.compatible);
    v.setBigUint64(88, h.autoclear);
    v.setUint32(96, h.refcountOrder);
    v.setUint32(100, h.headerLength);
    if (h.headerLength > 104) v.setUint8(104, h.compressionType);
    if (h.unknownHeaderFields) out.set(h.unknownHeaderFields, V3_HEADER_LENGTH);
  }
  return out;
}

/**
 * Serializes the header, its extensions (in QEMU's order, unknown ones
 * preserved) and the backing file name into the bytes of the header
 * cluster. Sets `backingFileOffset`/`backingFileSize` on `h`, and
 * `headerLength` as QEMU writes it (a v3 header at least QEMU's 112 bytes).
 *
 * @throws {UnsupportedError} when everything does not fit in one cluster
 */
export function serializeHeader(h: Qcow2Header): Uint8Array {
  const clusterSize = 2 ** h.clusterBits;
  h.headerLength = h.version === 3 ? V3_HEADER_LENGTH + (h.unknownHeaderFields?.length ?? 0) : V2_HEADER_LENGTH;
  const parts: Uint8Array[] = [];
  if (h.crypto) parts.push(extBytes(EXT_CRYPTO, h.crypto.data));
  if (h.backingFormat !== undefined) parts.push(extBytes(EXT_BACKING_FORMAT, encoder.encode(h.backingFormat)));
  if (h.dataFile !== undefined) parts.push(extBytes(EXT_DATA_FILE, encodeName(h.dataFile)));
  // QEMU writes its own table (never the image's), and none at 4 KiB clusters or less, where it would crowd out the backing name.
  if (h.version === 3 && clusterSize > 4096) parts.push(extBytes(EXT_FEATURE_TABLE, featureTableBytes(QEMU_FEATURE_NAMES)));
  if (h.bitmaps) parts.push(extBytes(EXT_BITMAPS, bitmapsExtBytes(h.bitmaps)));
  for (const e of h.unknownExtensions) parts.push(extBytes(e.type, e.data));
  parts.push(new Uint8Array(8));
  const backing = h.backingFile === undefined ? new Uint8Array(0) : encodeName(h.backingFile);
  let len = h.headerLength + parts.reduce((n, p) => n + p.length, 0);
  h.backingFileOffset = backing.length ? len : 0;
  h.backingFileSize = backing.length;
  len += backing.length;
  if (len > clusterSize) throw new UnsupportedError('Header extensions and backing file name do not fit in the first cluster of the image');
  const out = new Uint8Array(len);
  out.set(fixedBytes(h), 0);
  let pos = h.headerLength;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  out.set(backing, pos);
  return out;
}
