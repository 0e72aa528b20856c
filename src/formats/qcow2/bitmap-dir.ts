/**
 * Persistent dirty-bitmap directory entries and bitmap tables
 * (docs/interop/qcow2.rst "Bitmaps"), parsed and serialized as pure
 * functions over bytes, with QEMU's checks (qcow2-bitmap.c check_dir_entry,
 * check_table_entry).
 */
import { decodeName, encodeName } from '../../core/byte-names.js';
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** Directory entry flag: the bitmap was in use (open read/write) and may be inconsistent. */
export const BME_FLAG_IN_USE = 1;
/** Directory entry flag: the bitmap records writes (enabled). */
export const BME_FLAG_AUTO = 2;
/** Directory entry flag: extra data may be ignored. */
const BME_FLAG_EXTRA_DATA_COMPATIBLE = 4;
const BME_RESERVED_FLAGS = ~7 >>> 0;
/** Bitmap type: dirty tracking (the only one defined). */
export const BT_DIRTY_TRACKING_BITMAP = 1;
const TABLE_OFFSET_MASK = 0x00fffffffffffe00n;
const TABLE_RESERVED_MASK = 0xff000000000001fen;
const TABLE_ALL_ONES = 1n;
/** QEMU's cap on a bitmap's table entries. */
export const BME_MAX_TABLE_SIZE = 0x8000000;
/** QEMU's cap on a bitmap's bytes. */
export const BME_MAX_PHYS_SIZE = 0x20000000;

/** One bitmap directory entry. */
export interface BitmapDirEntry {
  tableOffset: number;
  tableSize: number;
  flags: number;
  type: number;
  granularityBits: number;
  name: string;
  extraData: Uint8Array;
}


/** Bytes of one directory entry with a name of `nameBytes` and `extra` bytes of extra data. */
export function dirEntrySize(nameBytes: number, extra: number): number {
  return Math.ceil((24 + nameBytes + extra) / 8) * 8;
}

/** Bytes of a bitmap of `virtualSize` bytes at `granularity` (one bit per granule). */
export function bitmapBytes(virtualSize: number, granularity: number): number {
  return Math.ceil(Math.ceil(virtualSize / granularity) / 8);
}

/** Parses `count` entries of a directory, checking each as QEMU does for `virtualSize`. */
export function parseDirEntries(dir: Uint8Array, count: number, virtualSize: number, clusterSize: number): BitmapDirEntry[] {
  const view = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const out: BitmapDirEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 24 > dir.length) throw new CorruptImageError('Bitmap directory is truncated');
    const tableOffset = view.getBigUint64(p);
    const nameSize = view.getUint16(p + 18);
    const extra = view.getUint32(p + 20);
    const end = p + 24 + extra + nameSize;
    if (end > dir.length || nameSize > LIMITS.qcow2MaxBitmapNameBytes) throw new CorruptImageError('Bitmap directory entry exceeds the directory');
    const e: BitmapDirEntry = {
      tableOffset: Number(tableOffset),
      tableSize: view.getUint32(p + 8),
      flags: view.getUint32(p + 12),
      type: view.getUint8(p + 16),
      granularityBits: view.getUint8(p + 17),
      extraData: dir.slice(p + 24, p + 24 + extra),
      name: decodeName(dir.subarray(p + 24 + extra, end)),
    };
    checkEntry(e, tableOffset, virtualSize, clusterSize);
    out.push(e);
    p = Math.ceil(end / 8) * 8;
  }
  return out;
}

function checkEntry(e: BitmapDirEntry, rawOffset: bigint, virtualSize: number, clusterSize: number): void {
  const bad = (why: string): CorruptImageError => new CorruptImageError(`Bitmap '${e.name}' is invalid: ${why}`);
  if (e.granularityBits < 9 || e.granularityBits > 31) throw bad('granularity out of range');
  if (e.type !== BT_DIRTY_TRACKING_BITMAP) throw bad('unknown type');
  if ((e.flags & BME_RESERVED_FLAGS) !== 0) throw bad('reserved flags set');
  if (e.extraData.length > 0 && !(e.flags & BME_FLAG_EXTRA_DATA_COMPATIBLE)) throw bad('incompatible extra data');
  if (rawOffset > BigInt(Number.MAX_SAFE_INTEGER) || e.tableOffset % clusterSize !== 0 || e.tableOffset === 0) throw bad('table offset invalid');
  const phys = bitmapBytes(virtualSize, 2 ** e.granularityBits);
  if (e.tableSize > BME_MAX_TABLE_SIZE || phys > BME_MAX_PHYS_SIZE) throw bad('too large');
  if (e.tableSize !== Math.ceil(phys / clusterSize)) throw bad('table size does not match the image size');
}

/** Serializes directory entries (each padded to 8 bytes). */
export function serializeDirEntries(entries: readonly BitmapDirEntry[]): Uint8Array {
  const names = entries.map((e) => encodeName(e.name));
  const size = entries.reduce((n, e, i) => n + dirEntrySize(names[i]!.length, e.extraData.length), 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let p = 0;
  entries.forEach((e, i) => {
    const name = names[i]!;
    view.setBigUint64(p, BigInt(e.tableOffset));
    view.setUint32(p + 8, e.tableSize);
    view.setUint32(p + 12, e.flags);
    view.setUint8(p + 16, e.type);
    view.setUint8(p + 17, e.granularityBits);
    view.setUint16(p + 18, name.length);
    view.setUint32(p + 20, e.extraData.length);
    out.set(e.extraData, p + 24);
    out.set(name, p + 24 + e.extraData.length);
    p += dirEntrySize(name.length, e.extraData.length);
  });
  return out;
}

/** One bitmap table entry: a data cluster, all zeros or all ones. */
export type TableEntry = { kind: 'data'; offset: number } | { kind: 'zeros' } | { kind: 'ones' };

/** Decodes bitmap table entry `i` (check_table_entry). */
export function tableEntry(view: DataView, i: number, clusterSize: number): TableEntry {
  const v = view.getBigUint64(i * 8);
  const off = v & TABLE_OFFSET_MASK;
  if ((v & TABLE_RESERVED_MASK) !== 0n || (off !== 0n && (v & TABLE_ALL_ONES) !== 0n)) {
    throw new CorruptImageError(`Bitmap table entry ${i} is invalid`);
  }
  if (off === 0n) return (v & TABLE_ALL_ONES) !== 0n ? { kind: 'ones' } : { kind: 'zeros' };
  const offset = Number(off);
  if (offset % clusterSize !== 0) throw new CorruptImageError(`Bitmap table entry ${i} points at an unaligned cluster`);
  return { kind: 'data', offset };
}
