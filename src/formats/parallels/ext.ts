/**
 * The Parallels format extension (docs/interop/parallels.txt): one cluster
 * at `ext_off` holding a magic, an MD5 of the rest of the cluster, and
 * feature records; the only feature QEMU reads is the dirty bitmap, which
 * it loads read-only (parallels-ext.c). Checked in QEMU's order with its
 * messages; bitmap bits are read only when asked for.
 */
import { nodeCrypto } from '../../core/random.js';

import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore, PersistentBitmapInfo } from '../driver.js';

const EXT_MAGIC = 0xab234cef23dcea87n;
const END_OF_FEATURES = 0n;
const DIRTY_BITMAP_FEATURE = 0x20385fae252cb34an;
/** magic u64 + MD5 (16). */
const EXT_HEADER = 24;
/** magic u64, flags u64, data_size u32, unused u32. */
const FEATURE_HEADER = 24;
/** size u64, id (16), granularity u32, l1_size u32. */
const BITMAP_FEATURE = 32;

/** One dirty bitmap of the format extension. */
export interface PrlBitmap {
  /** The UUID, as QEMU names the bitmap. */
  readonly name: string;
  /** Bytes of guest data per bit. */
  readonly granularity: number;
  /** Per bitmap cluster: 0 all clear, 1 all set, else its offset in sectors. */
  readonly l1: readonly bigint[];
}

function fail(message: string): never {
  throw new CorruptImageError(message);
}

function uuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Reads the format extension cluster at byte `offset` (undefined: beyond
 * 2^53, read as zeros like any offset past the end of the file) and
 * returns its dirty bitmaps. The cluster is held whole, so its size is
 * capped (LIMITS.parallelsMaxExtensionBytes).
 *
 * @throws {CorruptImageError} with QEMU's messages ("Wrong parallels Format Extension magic: …", "Wrong checksum …", …)
 */
export async function readFormatExtension(store: ByteStore, offset: number | undefined, clusterSize: number, virtualSectors: number): Promise<PrlBitmap[]> {
  if (clusterSize > LIMITS.parallelsMaxExtensionBytes) {
    throw new UnsupportedError(`Parallels format extension clusters of ${clusterSize} bytes are larger than vdisk reads (${LIMITS.parallelsMaxExtensionBytes})`);
  }
  const c = new Uint8Array(clusterSize);
  if (offset !== undefined) await store.read(offset, c);
  const v = new DataView(c.buffer);
  const magic = v.getBigUint64(0, true);
  if (magic !== EXT_MAGIC) fail(`Wrong parallels Format Extension magic: 0x${magic.toString(16)}, expected: 0x${EXT_MAGIC.toString(16)}`);
  const sum = nodeCrypto().createHash('md5').update(c.subarray(EXT_HEADER)).digest();
  if (!sum.equals(c.subarray(8, EXT_HEADER))) fail('Wrong checksum in Format Extension header. Format extension is corrupted.');
  return parseFeatures(c, virtualSectors);
}

/**
 * The feature records. `remaining` counts from the record's position to the
 * end of the cluster (QEMU subtracts only the record headers, so a record
 * after big ones reads past its buffer; vdisk stays inside the cluster).
 */
function parseFeatures(c: Uint8Array, virtualSectors: number): PrlBitmap[] {
  const clusterSize = c.length;
  const bitmaps: PrlBitmap[] = [];
  let pos = EXT_HEADER;
  // each record moves pos forward by at least its 24-byte header, so the loop ends within the cluster
  for (;;) {
    const remaining = clusterSize - pos;
    if (remaining < FEATURE_HEADER) {
      fail(`Can not read feature header, as remaining bytes (${remaining}) in Format Extension is less than Feature header size (${FEATURE_HEADER})`);
    }
    const fh = new DataView(c.buffer, c.byteOffset + pos, FEATURE_HEADER);
    pos += FEATURE_HEADER;
    const magic = fh.getBigUint64(0, true);
    const dataSize = fh.getUint32(16, true);
    if (fh.getBigUint64(8, true) !== 0n) fail('Flags for extension feature are unsupported');
    if (dataSize > remaining - FEATURE_HEADER) fail('Feature data_size exceedes Format Extension cluster');
    if (magic === END_OF_FEATURES) return bitmaps;
    if (magic !== DIRTY_BITMAP_FEATURE) fail(`Unknown feature: 0x${magic.toString(16)}`);
    const bitmap = parseBitmap(c.subarray(pos, pos + dataSize), clusterSize, virtualSectors);
    if (bitmaps.some((b) => b.name === bitmap.name)) fail(`Bitmap already exists: ${bitmap.name}`);
    bitmaps.push(bitmap);
    pos += Math.ceil(dataSize / 8) * 8;
  }
}

/** One dirty-bitmap feature: its header, then its L1 table. */
function parseBitmap(data: Uint8Array, clusterSize: number, virtualSectors: number): PrlBitmap {
  if (data.length < BITMAP_FEATURE) {
    fail(`Too small Bitmap Feature area in Parallels Format Extension: ${data.length} bytes, expected at least ${BITMAP_FEATURE} bytes`);
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const size = v.getBigUint64(0, true);
  // QEMU shifts the sector count into a 32-bit field
  const granularity = (v.getUint32(24, true) << 9) >>> 0;
  const l1Size = v.getUint32(28, true);
  if (size !== BigInt(virtualSectors)) fail(`Bitmap size (in sectors) ${BigInt.asIntN(64, size)} differs from disk size in sectors ${virtualSectors}`);
  if (l1Size * 8 > data.length - BITMAP_FEATURE) fail('Bitmaps feature corrupted: l1 table exceeds extension data_size');
  // QEMU asserts this (a crash); vdisk refuses the image instead
  if (granularity < 512 || (granularity & (granularity - 1)) !== 0) fail(`Bitmap granularity ${granularity} is not a power of two of at least 512 bytes`);
  const name = uuid(data.subarray(8, 24));
  const expected = Math.ceil(serializedBytes(virtualSectors * 512, granularity) / clusterSize);
  if (expected !== l1Size) fail(`Bitmap table size ${l1Size} does not correspond to bitmap size and cluster size. Expected ${expected}`);
  const l1: bigint[] = [];
  for (let i = 0; i < l1Size; i++) l1.push(v.getBigUint64(BITMAP_FEATURE + i * 8, true));
  return { name, granularity, l1 };
}

/** Bytes QEMU serializes a bitmap of `bytes` at `granularity` into: whole 64-bit words of bits. */
function serializedBytes(bytes: number, granularity: number): number {
  return Math.ceil(Math.ceil(bytes / granularity) / 64) * 8;
}

/** What `list` reports for a loaded bitmap: QEMU loads them read-only, enabled and consistent. */
export function bitmapInfo(b: PrlBitmap): PersistentBitmapInfo {
  return { name: b.name, granularity: b.granularity, enabled: true, inUse: false };
}

/**
 * The bits of `b` (one per `granularity` bytes, LSB first): per L1 entry
 * one cluster of bits, all clear (0), all set (1) or read from the file.
 */
export async function readBitmapBits(store: ByteStore, b: PrlBitmap, clusterSize: number, virtualSize: number): Promise<Uint8Array> {
  const bits = Math.ceil(virtualSize / b.granularity);
  const length = Math.ceil(bits / 8);
  if (length > LIMITS.parallelsMaxBitmapBytes) throw new UnsupportedError(`Dirty bitmap '${b.name}' is larger than vdisk reads (${length} bytes)`);
  const out = new Uint8Array(length);
  for (let i = 0; i < b.l1.length; i++) {
    const at = i * clusterSize;
    if (at >= length) break;
    const part = out.subarray(at, Math.min(length, at + clusterSize));
    const entry = b.l1[i] as bigint;
    if (entry === 1n) part.fill(0xff);
    else if (entry !== 0n) {
      const offset = entry * 512n;
      if (offset <= BigInt(Number.MAX_SAFE_INTEGER)) await store.read(Number(offset), part);
    }
  }
  // bits past the disk's end are not part of the bitmap
  if (bits % 8 !== 0) out[length - 1] = (out[length - 1] as number) & ((1 << bits % 8) - 1);
  return out;
}
