/**
 * Guest offset → extents through the L1 and L2 tables (qcow2-cluster.c):
 * standard and extended (subcluster) L2 entries, zero clusters, compressed
 * descriptors. Contiguous host runs merge, so reads stay large.
 */
import { CorruptImageError } from '../../core/errors.js';
import type { ByteStore, Extent } from '../driver.js';
import type { TableCache } from './cache.js';
import { emptyRunEnd } from './empty-run.js';
import {
  decodeCompressed,
  entryOffset,
  HI_COMPRESSED,
  HI_COPIED,
  HI_OFFSET_MASK,
  LO_OFFSET_MASK,
  LO_ZERO,
  type Geometry,
} from './layout.js';
import type { Mutable } from '../../core/mutable.js';

/** What mapping needs from an open image. */
export interface MapContext {
  readonly g: Geometry;
  readonly version: 2 | 3;
  readonly virtualSize: number;
  /** L1 table bytes (l1Size entries). */
  readonly l1: DataView;
  readonly l1Size: number;
  readonly l2Cache: TableCache;
  /** The image file (compressed data lives here). */
  readonly store: ByteStore;
  /** Where data clusters live: the image file or the external data file. */
  readonly dataStore: ByteStore;
  readonly externalData: boolean;
}

/** What reading one L2 table's entries needs. */
export type TableContext = Pick<MapContext, 'g' | 'version' | 'dataStore' | 'externalData'>;

/** L2 table offset from L1 entry `i` (0 = none). */
export function l1Entry(ctx: Pick<MapContext, 'l1' | 'l1Size' | 'g'>, i: number): number {
  if (i >= ctx.l1Size) return 0;
  const hi = ctx.l1.getUint32(i * 8);
  const lo = ctx.l1.getUint32(i * 8 + 4);
  const off = entryOffset(hi, lo, `L1 entry ${i}`);
  if (off % ctx.g.clusterSize !== 0) {
    throw new CorruptImageError(`L2 table offset 0x${off.toString(16)} unaligned (L1 index: 0x${i.toString(16)})`);
  }
  return off;
}

/** A walk's extents, each merged into the one before when they continue it. */
class ExtentList {
  readonly out: Mutable<Extent>[] = [];
  /** Takes `e` (a new object the caller lets go of: it may grow in place). */
  push(e: Mutable<Extent>): void {
    const last = this.out[this.out.length - 1];
    if (last && canMerge(last, e)) {
      last.length += e.length; // extents are ours until returned: grow in place
      return;
    }
    this.out.push(e);
  }
}

function canMerge(a: Extent, b: Extent): boolean {
  if (a.kind !== b.kind || a.offset + a.length !== b.offset) return false;
  switch (a.kind) {
    case 'unallocated':
      if (b.kind !== 'unallocated' || (a.hostOffset === undefined) !== (b.hostOffset === undefined)) return false;
      return a.hostOffset === undefined || (a.store === b.store && a.hostOffset + a.length === b.hostOffset);
    case 'data':
      return b.kind === 'data' && a.store === b.store && a.hostOffset + a.length === b.hostOffset;
    case 'zero':
      if (b.kind !== 'zero' || a.allocated !== b.allocated) return false;
      return !a.allocated || (a.store === b.store && (a.hostOffset ?? 0) + a.length === b.hostOffset);
    case 'compressed':
      return false;
  }
}


/**
 * Describes `[offset, offset+length)` (in bounds, length > 0): a non-empty
 * prefix that ends after `maxExtents` complete extents. Runs of empty L1
 * entries cost no table reads; inside a table, runs of empty entries are
 * found by native compares and contiguous data runs become one extent, so
 * a walk costs one pass over the allocated tables and one object per extent.
 */
export async function mapRange(ctx: MapContext, offset: number, length: number, maxExtents = Infinity): Promise<Extent[]> {
  const { g } = ctx;
  const tableBytes = g.l2Entries * g.clusterSize;
  const end = Math.min(offset + length, ctx.virtualSize);
  const list = new ExtentList();
  for (let pos = offset; pos < end; ) {
    const l1 = Math.floor(pos / tableBytes);
    const tableEnd = Math.min((l1 + 1) * tableBytes, end);
    try {
      const l2Off = l1Entry(ctx, l1);
      if (l2Off === 0) list.push({ kind: 'unallocated', offset: pos, length: tableEnd - pos });
      else {
        const table = await loadTable(ctx, l1, l2Off);
        const firstCluster = l1 * g.l2Entries;
        walkTable(ctx, table, l2Off, firstCluster, pos, tableEnd, list, maxExtents);
      }
    } catch (err) {
      // A bad entry or table ends the run before it, as in qemu's block status, which fails
      // only the ask that starts there: the extents wanted are then the ones before it.
      if (maxExtents !== Infinity && list.out.length >= maxExtents) return list.out.slice(0, maxExtents);
      throw err;
    }
    // Once an extent beyond the wanted ones has started, the wanted ones are complete.
    if (list.out.length > maxExtents) return list.out.slice(0, maxExtents);
    pos = tableEnd;
  }
  return list.out;
}

/** How far back a table miss looks for the walk's previous table. */
const SEQUENTIAL_LOOKBACK = 256;
/** How far ahead it looks for tables to read (a hint: a very sparse L1 table is not scanned whole). */
const READ_AHEAD_SCAN = 65536;

/**
 * The L2 table of L1 entry `l1`. A miss right after the previous allocated
 * table was used is a walk in guest order: the next tables are read ahead
 * in one batch, so their reads overlap one another and the walk.
 */
function loadTable(ctx: MapContext, l1: number, l2Off: number): Promise<Uint8Array> {
  const cache = ctx.l2Cache;
  if (!cache.has(l2Off) && cache.prefetchTables > 1) {
    let prev = 0;
    for (let i = l1 - 1; i >= 0 && i >= l1 - SEQUENTIAL_LOOKBACK && prev === 0; i--) prev = rawL1Offset(ctx, i);
    if (prev !== 0 && cache.has(prev)) {
      const batch = [l2Off];
      const stop = Math.min(ctx.l1Size, l1 + 1 + READ_AHEAD_SCAN);
      for (let i = l1 + 1; i < stop && batch.length < cache.prefetchTables; i++) {
        const off = rawL1Offset(ctx, i);
        if (off !== 0 && off % ctx.g.clusterSize === 0) batch.push(off);
      }
      cache.prefetch(batch);
    }
  }
  return cache.get(l2Off);
}

/** L1 entry `i`'s table offset, unchecked (0 when none or past 2^53): for read-ahead hints only. */
function rawL1Offset(ctx: MapContext, i: number): number {
  const hi = ctx.l1.getUint32(i * 8) & HI_OFFSET_MASK;
  const lo = ctx.l1.getUint32(i * 8 + 4) & LO_OFFSET_MASK;
  return hi > 0x1fffff ? 0 : hi * 0x100000000 + (lo >>> 0);
}

/**
 * The extents of one L2 table already in memory (`table`, read at host
 * `l2Off`, its first entry mapping guest cluster `firstCluster`) over guest
 * `[from, to)`: for readers that get tables some other way than the cache
 * (a forward-only stream).
 */
export function mapLoadedTable(ctx: TableContext, table: Uint8Array, l2Off: number, firstCluster: number, from: number, to: number): Extent[] {
  const list = new ExtentList();
  walkTable(ctx, table, l2Off, firstCluster, from, to, list, Infinity);
  return list.out;
}

/** The entries of one table over guest `[from, to)`, standard or extended. */
function walkTable(ctx: TableContext, table: Uint8Array, l2Off: number, firstCluster: number, from: number, to: number, list: ExtentList, maxExtents: number): void {
  const cs = ctx.g.clusterSize;
  const extended = ctx.g.extendedL2;
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const last = Math.ceil(to / cs) - firstCluster; // one past the last entry
  let i = Math.floor(from / cs) - firstCluster;
  let pos = from;
  while (pos < to) {
    const j = emptyRunEnd(table, i, last, extended ? 16 : 8);
    if (j > i) {
      // Empty entries: unallocated, whatever the image's version or data file.
      const runEnd = Math.min((firstCluster + j) * cs, to);
      list.push({ kind: 'unallocated', offset: pos, length: runEnd - pos });
      pos = runEnd;
      i = j;
    } else {
      const cStart = (firstCluster + i) * cs;
      const cEnd = Math.min(cStart + cs, to);
      (extended ? mapExtended : mapStandard)(ctx, view, { l2Off, index: i }, cStart, pos, cEnd, list);
      pos = cEnd;
      i++;
      const e = list.out[list.out.length - 1];
      if (!extended && e?.kind === 'data' && pos < to) {
        // Following entries that continue the host run join it without one extent each.
        const next = e.hostOffset + e.length;
        let k = i;
        while (k < last && isPlainDataAt(view, k, next + (k - i) * cs)) k++;
        if (k > i) {
          const runEnd = Math.min((firstCluster + k) * cs, to);
          e.length += runEnd - pos;
          pos = runEnd;
          i = k;
        }
      }
    }
    if (list.out.length > maxExtents) return;
  }
}

/** True when standard entry `k` maps its cluster uncompressed, not zero, at host `host`. */
function isPlainDataAt(view: DataView, k: number, host: number): boolean {
  const hi = view.getUint32(8 * k);
  const lo = view.getUint32(8 * k + 4);
  if (hi & HI_COMPRESSED || lo & LO_ZERO) return false;
  return (hi & HI_OFFSET_MASK) * 0x100000000 + ((lo & LO_OFFSET_MASK) >>> 0) === host;
}

interface EntryPos {
  readonly l2Off: number;
  readonly index: number;
}

function badEntry(where: EntryPos, what: string): CorruptImageError {
  return new CorruptImageError(
    `${what} (L2 offset: 0x${where.l2Off.toString(16)}, L2 index: 0x${where.index.toString(16)})`,
    { offset: where.l2Off },
  );
}

function dataOffset(ctx: TableContext, hi: number, lo: number, where: EntryPos): number {
  const off = entryOffset(hi, lo, 'L2 entry');
  if (off % ctx.g.clusterSize !== 0) throw badEntry(where, `Cluster allocation offset 0x${off.toString(16)} unaligned`);
  return off;
}

function mapStandard(ctx: TableContext, view: DataView, where: EntryPos, cStart: number, from: number, to: number, list: ExtentList): void {
  const hi = view.getUint32(where.index * 8);
  const lo = view.getUint32(where.index * 8 + 4);
  const length = to - from;
  if (hi & HI_COMPRESSED) {
    if (ctx.externalData) throw badEntry(where, 'Compressed cluster entry found in an image with an external data file');
    const d = decodeCompressed(hi, lo, ctx.g);
    list.push({ kind: 'compressed', offset: from, length, hostOffset: d.hostOffset, hostLength: d.hostLength, unitOffset: cStart });
    return;
  }
  const off = dataOffset(ctx, hi, lo, where);
  if (lo & LO_ZERO) {
    if (ctx.version < 3) throw badEntry(where, 'Zero cluster entry found in pre-v3 image');
    if (off === 0) list.push({ kind: 'zero', offset: from, length, allocated: false });
    else list.push({ kind: 'zero', offset: from, length, allocated: true, store: ctx.dataStore, hostOffset: off + (from - cStart) });
    return;
  }
  if (off === 0 && !(ctx.externalData && hi & HI_COPIED)) {
    list.push({ kind: 'unallocated', offset: from, length });
    return;
  }
  list.push({ kind: 'data', offset: from, length, store: ctx.dataStore, hostOffset: off + (from - cStart) });
}

/** Subcluster kinds of one extended entry. */
type ScKind = 'data' | 'zero' | 'zero-alloc' | 'unallocated';

function mapExtended(ctx: TableContext, view: DataView, where: EntryPos, cStart: number, from: number, to: number, list: ExtentList): void {
  const p = where.index * 16;
  const hi = view.getUint32(p);
  const lo = view.getUint32(p + 4);
  const zeroMask = view.getUint32(p + 8);
  const allocMask = view.getUint32(p + 12);
  if (hi & HI_COMPRESSED) {
    if (zeroMask !== 0 || allocMask !== 0) throw badEntry(where, 'Invalid cluster entry found');
    if (ctx.externalData) throw badEntry(where, 'Compressed cluster entry found in an image with an external data file');
    const d = decodeCompressed(hi, lo, ctx.g);
    list.push({ kind: 'compressed', offset: from, length: to - from, hostOffset: d.hostOffset, hostLength: d.hostLength, unitOffset: cStart });
    return;
  }
  if ((zeroMask & allocMask) !== 0) throw badEntry(where, 'Invalid cluster entry found');
  const off = dataOffset(ctx, hi, lo, where);
  const hasHost = off !== 0 || (ctx.externalData && (hi & HI_COPIED) !== 0);
  const sc = ctx.g.subclusterSize;
  for (let pos = from; pos < to; ) {
    const idx = Math.floor((pos - cStart) / sc);
    const scEnd = Math.min(cStart + (idx + 1) * sc, to);
    const bit = 2 ** idx;
    let kind: ScKind;
    if (Math.floor(zeroMask / bit) % 2) kind = hasHost ? 'zero-alloc' : 'zero';
    else if (Math.floor(allocMask / bit) % 2) {
      if (!hasHost) throw badEntry(where, 'Invalid cluster entry found');
      kind = 'data';
    } else kind = 'unallocated';
    const length = scEnd - pos;
    const host = off + (pos - cStart);
    if (kind === 'data') list.push({ kind: 'data', offset: pos, length, store: ctx.dataStore, hostOffset: host });
    else if (kind === 'zero-alloc') list.push({ kind: 'zero', offset: pos, length, allocated: true, store: ctx.dataStore, hostOffset: host });
    else if (kind === 'zero') list.push({ kind: 'zero', offset: pos, length, allocated: false });
    // qemu reports the reserved host space of an allocated cluster's unwritten subclusters (UNALLOCATED_ALLOC).
    else if (hasHost) list.push({ kind: 'unallocated', offset: pos, length, store: ctx.dataStore, hostOffset: host });
    else list.push({ kind: 'unallocated', offset: pos, length });
    pos = scEnd;
  }
}
