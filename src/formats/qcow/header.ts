/**
 * The qcow (version 1) header: 48 bytes, big-endian, at offset 0. Pure
 * functions: decode and validate in the order of QEMU's qcow_open (with its
 * messages), encode.
 *
 * ```
 *  0x00 magic 'QFI\xfb'          0x18 size u64 (bytes)
 *  0x04 version u32 (1)          0x20 cluster_bits u8, 0x21 l2_bits u8, pad u16
 *  0x08 backing_file_offset u64  0x24 crypt_method u32 (0 none, 1 AES)
 *  0x10 backing_file_size u32    0x28 l1_table_offset u64
 *  0x14 mtime u32
 * ```
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** Bytes of the header. */
export const QCOW_HEADER_SIZE = 48;
/** `QFI\xfb`. */
export const QCOW_MAGIC = 0x514649fb;
/** crypt_method values. */
export const QCOW_CRYPT = { none: 0, aes: 1 } as const;
/** Bit 63 of an L2 entry: the cluster is stored compressed. */
export const QCOW_OFLAG_COMPRESSED = 1n << 63n;
/** Largest L1 table QEMU accepts, in entries (INT_MAX / sizeof(uint64_t)). */
export const QCOW_MAX_L1_ENTRIES = Math.floor(0x7fffffff / 8);
/** Field offsets. */
const QCOW_FIELD = { backingFileOffset: 8, backingFileSize: 16, size: 24, l1TableOffset: 40 } as const;

/** A decoded, validated header. */
export interface QcowHeader {
  /** Offset of the backing file name (0: none). */
  readonly backingFileOffset: bigint;
  /** Length of the backing file name (≤ 1023 once checked). */
  readonly backingFileSize: number;
  readonly mtime: number;
  /** The size field as stored (bytes). */
  readonly size: bigint;
  readonly clusterBits: number;
  readonly l2Bits: number;
  readonly cryptMethod: number;
  readonly l1TableOffset: bigint;
}

/** What a new header holds. */
export interface NewQcowHeader {
  readonly backingFileOffset: number;
  readonly backingFileSize: number;
  readonly size: number;
  readonly clusterBits: number;
  readonly l2Bits: number;
  readonly cryptMethod: number;
  readonly l1TableOffset: number;
}

/**
 * Decodes and checks the header as qcow_open does, before anything is
 * sized from it. Short input reads as zeros past its end (a file read past
 * EOF in QEMU).
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED, with qemu-img's messages
 */
export function parseQcowHeader(bytes: Uint8Array): QcowHeader {
  const buf = new Uint8Array(QCOW_HEADER_SIZE);
  buf.set(bytes.subarray(0, QCOW_HEADER_SIZE));
  const v = new DataView(buf.buffer);
  if (v.getUint32(0) !== QCOW_MAGIC) throw new CorruptImageError('Image not in qcow format', { offset: 0 });
  const version = v.getUint32(4);
  if (version !== 1) {
    const hint = version === 2 || version === 3 ? "Try the 'qcow2' driver instead." : undefined;
    throw new UnsupportedError(`qcow (v1) does not support qcow version ${version}`, { offset: 4, hint });
  }
  const size = v.getBigUint64(QCOW_FIELD.size);
  if (size <= 1n) throw new CorruptImageError('Image size is too small (must be at least 2 bytes)', { offset: QCOW_FIELD.size });
  const clusterBits = v.getUint8(32);
  if (clusterBits < 9 || clusterBits > 16) throw new CorruptImageError('Cluster size must be between 512 and 64k', { offset: 32 });
  const l2Bits = v.getUint8(33);
  // l2_bits counts 8-byte entries: the table is 512 bytes to 64 KiB
  if (l2Bits < 6 || l2Bits > 13) throw new CorruptImageError('L2 table size must be between 512 and 64k', { offset: 33 });
  const cryptMethod = v.getUint32(36);
  if (cryptMethod > QCOW_CRYPT.aes) throw new CorruptImageError('invalid encryption method in qcow header', { offset: 36 });
  return {
    backingFileOffset: v.getBigUint64(QCOW_FIELD.backingFileOffset),
    backingFileSize: v.getUint32(QCOW_FIELD.backingFileSize),
    mtime: v.getUint32(20),
    size,
    clusterBits,
    l2Bits,
    cryptMethod,
    l1TableOffset: v.getBigUint64(QCOW_FIELD.l1TableOffset),
  };
}

/** The sizes qcow_open derives from a header once its encryption is set up. */
export interface QcowGeometry {
  /** Guest-visible size: whole sectors of the size field, as QEMU's total_sectors. */
  readonly virtualSize: number;
  /** L1 entries covering the size field. */
  readonly l1Size: number;
}

/**
 * The L1 size and virtual size, checked as qcow_open checks them (after the
 * encryption setup, so its errors come first).
 *
 * @throws {CorruptImageError} "Image too large", {@link UnsupportedError} past 2^53 bytes
 */
export function qcowGeometry(h: QcowHeader): QcowGeometry {
  const shift = BigInt(h.clusterBits + h.l2Bits);
  if (h.size > 0xffffffffffffffffn - (1n << shift)) throw new CorruptImageError('Image too large', { offset: QCOW_FIELD.size });
  const l1Size = (h.size + (1n << shift) - 1n) >> shift;
  if (l1Size > BigInt(QCOW_MAX_L1_ENTRIES)) throw new CorruptImageError('Image too large', { offset: QCOW_FIELD.size });
  const virtualSize = (h.size / 512n) * 512n;
  if (virtualSize > BigInt(LIMITS.maxOffset)) {
    throw new UnsupportedError(`Image size ${h.size} is above ${LIMITS.maxOffset} bytes, the largest vdisk handles`, { offset: QCOW_FIELD.size });
  }
  return { virtualSize: Number(virtualSize), l1Size: Number(l1Size) };
}

/** Encodes a new header (mtime 0 and padding zero, as qcow_co_create writes them). */
export function serializeQcowHeader(h: NewQcowHeader): Uint8Array {
  const buf = new Uint8Array(QCOW_HEADER_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, QCOW_MAGIC);
  v.setUint32(4, 1);
  v.setBigUint64(QCOW_FIELD.backingFileOffset, BigInt(h.backingFileOffset));
  v.setUint32(QCOW_FIELD.backingFileSize, h.backingFileSize);
  v.setBigUint64(QCOW_FIELD.size, BigInt(h.size));
  v.setUint8(32, h.clusterBits);
  v.setUint8(33, h.l2Bits);
  v.setUint32(36, h.cryptMethod);
  v.setBigUint64(QCOW_FIELD.l1TableOffset, BigInt(h.l1TableOffset));
  return buf;
}
