/**
 * Region tables (MS-VHDX 2.2.3): two 64 KiB copies at 192 KiB and 256 KiB,
 * each `regi` + CRC-32C + entries {GUID, file offset, length, required}.
 * vdisk needs exactly one BAT and one metadata region, refuses unknown
 * required regions, and refuses overlaps between regions, the header
 * section and the log (qemu's vhdx_region_check).
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { EINVAL, ENOTSUP } from './open-errno.js';
import { readU64Safe } from '../../core/bytes.js';
import {
  GUID_BAT,
  GUID_METADATA,
  HEADER_SECTION_END,
  REGION_REQUIRED,
  REGION_TABLE_SIZE,
  SIG_REGION,
  guidAt,
} from './constants.js';
import { crc32c, crc32cWithZeroField } from './crc32c.js';

/** Most region table entries the spec allows. */
const MAX_REGION_ENTRIES = 2047;

/** A byte range of the file. */
export interface FileRange {
  readonly offset: number;
  readonly length: number;
}

/** The two regions vdisk uses. */
export interface Regions {
  readonly bat: FileRange;
  readonly metadata: FileRange;
  /** Every entry of the table, in table order (unknown optional regions too). */
  readonly entries?: readonly FileRange[] | undefined;
}

function overlaps(a: FileRange, b: FileRange): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

/** True when the 64 KiB block has a region-table signature and a good CRC. */
export function regionTableValid(buf: Uint8Array): boolean {
  if (buf.length < REGION_TABLE_SIZE) return false;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return v.getUint32(0, true) === SIG_REGION && crc32cWithZeroField(buf.subarray(0, REGION_TABLE_SIZE), 4) === v.getUint32(4, true);
}

/**
 * Decodes a region table already known valid ({@link regionTableValid}).
 * `reserved` are ranges the regions must not overlap (header section, log).
 *
 * @param tableOffset - where the table sits in the file (for messages)
 */
export function parseRegionTable(buf: Uint8Array, tableOffset: number, reserved: readonly FileRange[]): Regions {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = v.getUint32(8, true);
  if (count > MAX_REGION_ENTRIES) throw new CorruptImageError(`VHDX region table has ${count} entries (at most ${MAX_REGION_ENTRIES})`, { offset: tableOffset + 8, errno: EINVAL });
  const seen: FileRange[] = [{ offset: 0, length: HEADER_SECTION_END }, ...reserved];
  let bat: FileRange | undefined;
  let metadata: FileRange | undefined;
  for (let i = 0; i < count; i++) {
    const at = 16 + i * 32;
    const fileOffset = readU64Safe(v, at + 16, true);
    const range = { offset: fileOffset ?? 0, length: v.getUint32(at + 24, true) };
    const where = { offset: tableOffset + at };
    // qemu fails these with a bare errno (see open-errno.ts)
    const malformed = { ...where, errno: EINVAL };
    if (fileOffset === undefined) throw new UnsupportedError('VHDX region offset is larger than vdisk supports (2^53 - 1)', where);
    if (seen.some((r) => r.length > 0 && range.length > 0 && overlaps(r, range))) {
      // qemu checks against the log and the earlier entries (not the header section), newest first, and reports the first.
      const hit = seen.slice(1).reverse().find((r) => range.length > 0 && overlaps(r, range));
      const report = hit && `VHDX region ${range.offset}-${range.offset + range.length} overlaps with region ${hit.offset}-${hit.offset + hit.length}`;
      throw new CorruptImageError(`VHDX region table entry ${i} [${range.offset}, +${range.length}) overlaps another region`, { ...malformed, data: { report } });
    }
    seen.push(range);
    if (guidAt(buf, at, GUID_BAT)) {
      if (bat) throw new CorruptImageError('VHDX region table lists the BAT region twice', malformed);
      bat = range;
    } else if (guidAt(buf, at, GUID_METADATA)) {
      if (metadata) throw new CorruptImageError('VHDX region table lists the metadata region twice', malformed);
      metadata = range;
    } else if (v.getUint32(at + 28, true) & REGION_REQUIRED) {
      throw new UnsupportedError(`VHDX region table entry ${i} is a required region vdisk does not know`, { ...where, errno: ENOTSUP });
    }
  }
  if (!bat || !metadata) throw new CorruptImageError(`VHDX region table lacks the ${bat ? 'metadata' : 'BAT'} region`, { offset: tableOffset, errno: EINVAL });
  return { bat, metadata, entries: seen.slice(1 + reserved.length) };
}

/** Encodes a region table with the BAT and metadata regions (required flag clear, as qemu writes). */
export function serializeRegionTable(regions: Regions): Uint8Array {
  const buf = new Uint8Array(REGION_TABLE_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, SIG_REGION, true);
  v.setUint32(8, 2, true);
  const put = (i: number, guid: Uint8Array, r: FileRange): void => {
    const at = 16 + i * 32;
    buf.set(guid, at);
    v.setBigUint64(at + 16, BigInt(r.offset), true);
    v.setUint32(at + 24, r.length, true);
  };
  put(0, GUID_BAT, regions.bat);
  put(1, GUID_METADATA, regions.metadata);
  v.setUint32(4, crc32c(buf), true);
  return buf;
}
