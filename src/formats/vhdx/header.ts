/**
 * The header section (MS-VHDX 2.2): the file identifier at 0 and the two
 * 4 KiB headers at 64 KiB and 128 KiB. A header is valid when its signature
 * and CRC-32C check out and its version is 1; the current header is the
 * valid one with the higher sequence number. Pure functions over bytes.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { readU64Safe } from '../../core/bytes.js';
import {
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SECTION_END,
  HEADER_SIZE,
  MiB,
  SIG_FILE,
  SIG_HEADER,
  guidIsZero,
} from './constants.js';
import { crc32c, crc32cWithZeroField } from './crc32c.js';

/** One decoded header. GUIDs are kept as their 16 on-disk bytes. */
export interface VhdxHeader {
  readonly sequenceNumber: bigint;
  readonly fileWriteGuid: Uint8Array;
  readonly dataWriteGuid: Uint8Array;
  /** All zero when the log is empty (clean image). */
  readonly logGuid: Uint8Array;
  readonly logVersion: number;
  readonly version: number;
  readonly logLength: number;
  readonly logOffset: number;
}

/** The current header and which slot (0 = 64 KiB, 1 = 128 KiB) it came from. */
export interface CurrentHeader {
  readonly header: VhdxHeader;
  readonly slot: 0 | 1;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** True when `head` starts with the `vhdxfile` signature. */
export function hasFileSignature(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  for (let i = 0; i < 8; i++) if (head[i] !== SIG_FILE.charCodeAt(i)) return false;
  return true;
}

/** Decodes a 4 KiB header block; undefined when it is not a valid header. */
export function parseHeader(buf: Uint8Array): VhdxHeader | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const v = view(buf);
  if (v.getUint32(0, true) !== SIG_HEADER) return undefined;
  if (crc32cWithZeroField(buf.subarray(0, HEADER_SIZE), 4) !== v.getUint32(4, true)) return undefined;
  const version = v.getUint16(66, true);
  if (version !== 1) return undefined;
  const logOffset = readU64Safe(v, 72, true);
  return {
    sequenceNumber: v.getBigUint64(8, true),
    fileWriteGuid: buf.slice(16, 32),
    dataWriteGuid: buf.slice(32, 48),
    logGuid: buf.slice(48, 64),
    logVersion: v.getUint16(64, true),
    version,
    logLength: v.getUint32(68, true),
    // An unrepresentable offset fails validation later with a clear message.
    logOffset: logOffset ?? -1,
  };
}

/**
 * Picks the current header from the two header blocks (qemu's rules: the
 * higher sequence number wins; equal numbers are accepted only when the two
 * headers are byte-identical, as Disk2VHD writes them).
 *
 * @throws {CorruptImageError} when neither header is valid
 */
export function selectHeader(block1: Uint8Array, block2: Uint8Array): CurrentHeader {
  const h1 = parseHeader(block1);
  const h2 = parseHeader(block2);
  let current: CurrentHeader;
  if (h1 && !h2) current = { header: h1, slot: 0 };
  else if (!h1 && h2) current = { header: h2, slot: 1 };
  else if (h1 && h2) {
    if (h1.sequenceNumber > h2.sequenceNumber) current = { header: h1, slot: 0 };
    else if (h2.sequenceNumber > h1.sequenceNumber) current = { header: h2, slot: 1 };
    else if (Buffer.compare(block1.subarray(0, HEADER_SIZE), block2.subarray(0, HEADER_SIZE)) === 0) current = { header: h1, slot: 0 };
    else throw new CorruptImageError('No valid VHDX header found: both headers have the same sequence number', { offset: HEADER1_OFFSET });
  } else {
    throw new CorruptImageError('No valid VHDX header found', { offset: HEADER1_OFFSET });
  }
  validateLogFields(current);
  return current;
}

function validateLogFields({ header, slot }: CurrentHeader): void {
  const offset = slot === 0 ? HEADER1_OFFSET : HEADER2_OFFSET;
  if (header.logOffset < 0) throw new UnsupportedError('VHDX log offset is larger than vdisk supports (2^53 - 1)', { offset: offset + 72 });
  if (header.logOffset < HEADER_SECTION_END || header.logOffset % MiB !== 0) {
    throw new CorruptImageError(`VHDX header: log offset ${header.logOffset} is not a multiple of 1 MiB past the header section`, { offset: offset + 72 });
  }
  if (header.logVersion !== 0) throw new CorruptImageError(`VHDX header: unsupported log version ${header.logVersion}`, { offset: offset + 64 });
  if (!guidIsZero(header.logGuid, 0) && header.logLength !== 0 && header.logLength % MiB !== 0) {
    throw new CorruptImageError(`VHDX header: log length ${header.logLength} is not a multiple of 1 MiB`, { offset: offset + 68 });
  }
}

/** True when the header says the log holds entries that must be replayed. */
export function logIsDirty(header: VhdxHeader): boolean {
  return !guidIsZero(header.logGuid, 0) && header.logLength !== 0;
}

/** Encodes a header into a fresh 4 KiB block with its CRC-32C. */
export function serializeHeader(h: VhdxHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_SIZE);
  const v = view(buf);
  v.setUint32(0, SIG_HEADER, true);
  v.setBigUint64(8, h.sequenceNumber, true);
  buf.set(h.fileWriteGuid, 16);
  buf.set(h.dataWriteGuid, 32);
  buf.set(h.logGuid, 48);
  v.setUint16(64, h.logVersion, true);
  v.setUint16(66, h.version, true);
  v.setUint32(68, h.logLength, true);
  v.setBigUint64(72, BigInt(h.logOffset), true);
  v.setUint32(4, crc32c(buf), true);
  return buf;
}

/** The file identifier block: `vhdxfile` then the creator as UTF-16LE (at most 256 characters). */
export function serializeFileIdentifier(creator: string): Uint8Array {
  const buf = new Uint8Array(8 + 512);
  for (let i = 0; i < 8; i++) buf[i] = SIG_FILE.charCodeAt(i);
  const text = Buffer.from(creator.slice(0, 255), 'utf16le');
  buf.set(text, 8);
  return buf;
}
