/**
 * The metadata log (MS-VHDX 2.3): a circular buffer of 4 KiB sectors
 * holding entries (`loge` header, `desc`/`zero` descriptors, `data`
 * sectors), each covered by one CRC-32C. This file finds the active
 * sequence in a log (as qemu's vhdx_log_search does: chains of valid
 * entries with consecutive sequence numbers, the highest one wins) and
 * encodes new entries. Pure functions over bytes; the whole log is given
 * in memory (its size is capped by LIMITS.vhdxMaxLogBytes).
 */
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { readU64Safe } from '../../core/bytes.js';
import { LOG_SECTOR_SIZE, SIG_LOG_DATA, SIG_LOG_DESC, SIG_LOG_ENTRY, SIG_LOG_ZERO, guidAt } from './constants.js';
import { crc32c, crc32cWithZeroField } from './crc32c.js';

const ENTRY_HEADER_SIZE = 64;
const DESCRIPTOR_SIZE = 32;

/** One replayed write: 4 KiB of data, or a run of zeros. */
export type LogWrite =
  | { readonly kind: 'data'; readonly fileOffset: number; readonly data: Uint8Array }
  | { readonly kind: 'zero'; readonly fileOffset: number; readonly length: number };

/** The active sequence, flattened to the writes it makes, in order. */
export interface LogReplay {
  readonly writes: readonly LogWrite[];
  /** Entries in the sequence. */
  readonly entries: number;
  /** Highest sequence number seen (the next entry uses one more). */
  readonly lastSequence: bigint;
  /** Largest LastFileOffset of the sequence: the file must be at least this long. */
  readonly lastFileOffset: number;
  /** Largest FlushedFileOffset: a shorter file was truncated. */
  readonly flushedFileOffset: number;
}

interface ParsedEntry {
  readonly sequence: bigint;
  readonly length: number;
  readonly writes: LogWrite[];
  readonly lastFileOffset: number;
  readonly flushedFileOffset: number;
}

/** Sectors holding the header and `count` descriptors (126 fit in the first sector, 128 in later ones). */
export function descriptorSectors(count: number): number {
  return Math.ceil((count + 2) / 128);
}

/** `length` bytes of the circular log starting at `pos`. */
function circular(log: Uint8Array, pos: number, length: number): Uint8Array {
  if (pos + length <= log.length) return log.subarray(pos, pos + length);
  const out = new Uint8Array(length);
  const first = log.length - pos;
  out.set(log.subarray(pos), 0);
  out.set(log.subarray(0, length - first), first);
  return out;
}

/** Budget of bytes a search may checksum. */
interface Budget {
  left: number;
}

function cheapHeaderCheck(log: Uint8Array, pos: number, logGuid: Uint8Array): { length: number; sequence: bigint; count: number } | undefined {
  const h = circular(log, pos, ENTRY_HEADER_SIZE);
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (v.getUint32(0, true) !== SIG_LOG_ENTRY) return undefined;
  const length = v.getUint32(8, true);
  const sequence = v.getBigUint64(16, true);
  const count = v.getUint32(24, true);
  if (length === 0 || length > log.length || length % LOG_SECTOR_SIZE !== 0 || sequence === 0n) return undefined;
  if (!guidAt(h, 32, logGuid)) return undefined;
  if (descriptorSectors(count) * LOG_SECTOR_SIZE > length) return undefined;
  return { length, sequence, count };
}

/**
 * Validates and decodes the entry at `pos`; undefined when no valid entry
 * starts there. A valid checksum over invalid descriptors is corruption.
 */
function readEntry(log: Uint8Array, pos: number, logGuid: Uint8Array, budget: Budget, logOffset: number): ParsedEntry | undefined {
  const head = cheapHeaderCheck(log, pos, logGuid);
  if (!head) return undefined;
  budget.left -= head.length;
  if (budget.left < 0) {
    throw new CorruptImageError(`VHDX log search checksummed more than ${LIMITS.vhdxLogScanBudgetBytes} bytes (LIMITS.vhdxLogScanBudgetBytes); the log is corrupt`, { offset: logOffset });
  }
  const entry = circular(log, pos, head.length);
  const v = new DataView(entry.buffer, entry.byteOffset, entry.byteLength);
  if (crc32cWithZeroField(entry, 4) !== v.getUint32(4, true)) return undefined;
  const flushed = readU64Safe(v, 48, true);
  const last = readU64Safe(v, 56, true);
  const where = { offset: logOffset + pos };
  if (flushed === undefined || last === undefined) throw new CorruptImageError('VHDX log entry file offsets exceed 2^53', where);
  const writes = decodeDescriptors(entry, head.count, head.sequence, where.offset);
  return { sequence: head.sequence, length: head.length, writes, lastFileOffset: last, flushedFileOffset: flushed };
}

function decodeDescriptors(entry: Uint8Array, count: number, sequence: bigint, entryOffset: number): LogWrite[] {
  const v = new DataView(entry.buffer, entry.byteOffset, entry.byteLength);
  let dataAt = descriptorSectors(count) * LOG_SECTOR_SIZE;
  const writes: LogWrite[] = [];
  for (let i = 0; i < count; i++) {
    const at = ENTRY_HEADER_SIZE + i * DESCRIPTOR_SIZE;
    const where = { offset: entryOffset + at };
    const sig = v.getUint32(at, true);
    const fileOffset = readU64Safe(v, at + 16, true);
    if (v.getBigUint64(at + 24, true) !== sequence) throw new CorruptImageError(`VHDX log descriptor ${i} has a mismatched sequence number`, where);
    if (fileOffset === undefined || fileOffset % LOG_SECTOR_SIZE !== 0) throw new CorruptImageError(`VHDX log descriptor ${i} has an unaligned or too large file offset`, where);
    if (sig === SIG_LOG_ZERO) {
      const length = readU64Safe(v, at + 8, true);
      if (length === undefined || length % LOG_SECTOR_SIZE !== 0) throw new CorruptImageError(`VHDX log zero descriptor ${i} has a bad length`, where);
      writes.push({ kind: 'zero', fileOffset, length });
    } else if (sig === SIG_LOG_DESC) {
      if (dataAt + LOG_SECTOR_SIZE > entry.length) throw new CorruptImageError(`VHDX log descriptor ${i} has no data sector`, where);
      const ds = new DataView(entry.buffer, entry.byteOffset + dataAt, LOG_SECTOR_SIZE);
      const seq = (BigInt(ds.getUint32(4, true)) << 32n) | BigInt(ds.getUint32(4092, true));
      if (ds.getUint32(0, true) !== SIG_LOG_DATA || seq !== sequence) throw new CorruptImageError(`VHDX log data sector for descriptor ${i} is invalid`, { offset: entryOffset + dataAt });
      const data = new Uint8Array(LOG_SECTOR_SIZE);
      data.set(entry.subarray(at + 8, at + 16), 0);
      data.set(entry.subarray(dataAt + 8, dataAt + 4092), 8);
      data.set(entry.subarray(at + 4, at + 8), 4092);
      writes.push({ kind: 'data', fileOffset, data });
      dataAt += LOG_SECTOR_SIZE;
    } else {
      throw new CorruptImageError(`VHDX log descriptor ${i} has an unknown signature`, where);
    }
  }
  return writes;
}

/** Follows a chain of entries with consecutive sequence numbers from `start`. */
function readChain(log: Uint8Array, start: number, first: ParsedEntry, logGuid: Uint8Array, budget: Budget, logOffset: number): { chain: ParsedEntry[]; end: number; wrapped: boolean } {
  const chain = [first];
  let pos = (start + first.length) % log.length;
  let travelled = first.length;
  while (travelled < log.length) {
    const prev = chain[chain.length - 1] as ParsedEntry;
    const next = readEntry(log, pos, logGuid, budget, logOffset);
    if (!next || next.sequence !== prev.sequence + 1n || travelled + next.length > log.length) break;
    chain.push(next);
    pos = (pos + next.length) % log.length;
    travelled += next.length;
  }
  return { chain, end: pos, wrapped: start + travelled >= log.length };
}

/**
 * Finds the active sequence of a log whose header GUID is `logGuid`;
 * undefined when the log holds no valid entry (nothing to replay).
 *
 * @param logOffset - file offset of the log (for messages)
 */
export function findActiveSequence(log: Uint8Array, logGuid: Uint8Array, logOffset: number): LogReplay | undefined {
  const budget: Budget = { left: LIMITS.vhdxLogScanBudgetBytes };
  let best: ParsedEntry[] | undefined;
  let pos = 0;
  while (pos < log.length) {
    const first = readEntry(log, pos, logGuid, budget, logOffset);
    if (!first) {
      pos += LOG_SECTOR_SIZE;
      continue;
    }
    const { chain, end, wrapped } = readChain(log, pos, first, logGuid, budget, logOffset);
    const head = chain[chain.length - 1] as ParsedEntry;
    if (!best || head.sequence > (best[best.length - 1] as ParsedEntry).sequence) best = chain;
    if (wrapped) break;
    pos = end;
  }
  if (!best) return undefined;
  return {
    writes: best.flatMap((e) => e.writes),
    entries: best.length,
    lastSequence: (best[best.length - 1] as ParsedEntry).sequence,
    lastFileOffset: Math.max(...best.map((e) => e.lastFileOffset)),
    flushedFileOffset: Math.max(...best.map((e) => e.flushedFileOffset)),
  };
}

/** What one new log entry records. */
export interface NewLogEntry {
  readonly sequence: bigint;
  readonly logGuid: Uint8Array;
  /** Log offset of the oldest entry still needed (this entry's own position when it stands alone). */
  readonly tail: number;
  readonly flushedFileOffset: number;
  readonly lastFileOffset: number;
  /** Whole 4 KiB sectors to write, at 4 KiB-aligned file offsets. */
  readonly sectors: readonly { readonly fileOffset: number; readonly data: Uint8Array }[];
  /** Zero runs (4 KiB multiples). */
  readonly zeros?: readonly { readonly fileOffset: number; readonly length: number }[];
}

/** Encodes a log entry (header, descriptors, data sectors) with its CRC-32C. */
export function serializeLogEntry(e: NewLogEntry): Uint8Array {
  const zeros = e.zeros ?? [];
  const count = e.sectors.length + zeros.length;
  const descSectors = descriptorSectors(count);
  const buf = new Uint8Array((descSectors + e.sectors.length) * LOG_SECTOR_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, SIG_LOG_ENTRY, true);
  v.setUint32(8, buf.length, true);
  v.setUint32(12, e.tail, true);
  v.setBigUint64(16, e.sequence, true);
  v.setUint32(24, count, true);
  buf.set(e.logGuid, 32);
  v.setBigUint64(48, BigInt(e.flushedFileOffset), true);
  v.setBigUint64(56, BigInt(e.lastFileOffset), true);
  let d = 0;
  for (const z of zeros) {
    const at = ENTRY_HEADER_SIZE + d++ * DESCRIPTOR_SIZE;
    v.setUint32(at, SIG_LOG_ZERO, true);
    v.setBigUint64(at + 8, BigInt(z.length), true);
    v.setBigUint64(at + 16, BigInt(z.fileOffset), true);
    v.setBigUint64(at + 24, e.sequence, true);
  }
  e.sectors.forEach((s, i) => {
    const at = ENTRY_HEADER_SIZE + d++ * DESCRIPTOR_SIZE;
    const dataAt = (descSectors + i) * LOG_SECTOR_SIZE;
    v.setUint32(at, SIG_LOG_DESC, true);
    buf.set(s.data.subarray(4092, 4096), at + 4);
    buf.set(s.data.subarray(0, 8), at + 8);
    v.setBigUint64(at + 16, BigInt(s.fileOffset), true);
    v.setBigUint64(at + 24, e.sequence, true);
    v.setUint32(dataAt, SIG_LOG_DATA, true);
    v.setUint32(dataAt + 4, Number(e.sequence >> 32n), true);
    buf.set(s.data.subarray(8, 4092), dataAt + 8);
    v.setUint32(dataAt + 4092, Number(e.sequence & 0xffffffffn), true);
  });
  v.setUint32(4, crc32c(buf), true);
  return buf;
}
