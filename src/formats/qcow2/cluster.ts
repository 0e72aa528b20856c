/**
 * Guest offset → extents through the L1 and L2 tables (qcow2-cluster.c):
 * standard and extended (subcluster) L2 entries, zero clusters, compressed
 * descriptors. One call covers at most one L2 table and merges contiguous
 * host runs, so reads stay large.
 */
import { CorruptImageError } from '../../core/errors.js';
import type { ByteStore, Extent } from '../driver.js';
import type { TableCache } from './cache.js';
import {
  decodeCompressed,
  entryOffset,
  HI_COMPRESSED,
  HI_COPIED,
  LO_ZERO,
  splitGuestCluster,
  type Geometry,
} from './layout.js';

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

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

class ExtentList {
  readonly out: Mutable<Extent>[] = [];
  push(e: Extent): void {
    const last = this.out[this.out.length - 1];
    if (last && canMerge(last, e)) {
      last.length += e.length; // extents are ours until returned: grow in place
      return;
    }
    this.out.push({ ...e });
  }
}

function canMerge(a: Extent, b: Extent): boolean {
  if (a.kind !== b.kind || a.offset + a.length !== b.offset) return false;
  switch (a.kind) {
    case 'unallocated':
      return true;
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
 * prefix that ends at the latest at the end of the L2 table holding
 * `offset`, and after `maxExtents` complete extents.
 */
export async function mapRange(ctx: MapContext, offset: number, length: number, maxExtents = Infinity): Promise<Extent[]> {
  const { g } = ctx;
  const cluster = Math.floor(offset / g.clusterSize);
  const { l1, l2 } = splitGuestCluster(cluster, g);
  const tableEnd = (l1 + 1) * g.l2Entries * g.clusterSize;
  const end = Math.min(offset + length, tableEnd, ctx.virtualSize);
  const l2Off = l1Entry(ctx, l1);
  if (l2Off === 0) return [{ kind: 'unallocated', offset, length: end - offset }];
  const table = await ctx.l2Cache.get(l2Off);
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const list = new ExtentList();
  let pos = offset;
  for (let i = l2; pos < end; i++) {
    const cStart = (cluster + (i - l2)) * g.clusterSize;
    const cEnd = Math.min(cStart + g.clusterSize, end);
    const where = { l2Off, index: i };
    if (g.extendedL2) mapExtended(ctx, view, where, cStart, pos, cEnd, list);
    else mapStandard(ctx, view, where, cStart, pos, cEnd, list);
    pos = cEnd;
    // Once an extent beyond the wanted ones has started, the wanted ones are complete.
    if (list.out.length > maxExtents) return list.out.slice(0, maxExtents);
  }
  return list.out;
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

function dataOffset(ctx: MapContext, hi: number, lo: number, where: EntryPos): number {
  const off = entryOffset(hi, lo, 'L2 entry');
  if (off % ctx.g.clusterSize !== 0) throw badEntry(where, `Cluster allocation offset 0x${off.toString(16)} unaligned`);
  return off;
}

function mapStandard(ctx: MapContext, view: DataView, where: EntryPos, cStart: number, from: number, to: number, list: ExtentList): void {
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

function mapExtended(ctx: MapContext, view: DataView, where: EntryPos, cStart: number, from: number, to: number, list: ExtentList): void {
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
    else list.push({ kind: 'unallocated', offset: pos, length });
    pos = scEnd;
  }
}
