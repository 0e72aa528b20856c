/**
 * The refcount walk behind internal snapshots (qcow2_update_snapshot_refcount):
 * add `addend` (+1, -1 or 0) to every cluster an L1 table reaches (its L2
 * tables, their data clusters, compressed spans) and recompute the COPIED
 * flags (set exactly when the refcount is 1). Only the in-memory L1 and the
 * caches change here; callers write back in the crash-safe order.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { l1Entry } from './cluster.js';
import { decodeCompressed, entryOffset, HI_COMPRESSED, HI_COPIED } from './layout.js';
import type { Refcounts } from './refcount.js';
import { refcountMax } from './refcount.js';
import type { Qcow2State } from './state.js';

/** An L1 table held in memory (the active one or a snapshot's). */
export interface L1Table {
  readonly view: DataView;
  readonly size: number;
}

/** Host clusters one L2 entry references (none for unallocated / plain zero entries). */
function entryClusters(s: Qcow2State, hi: number, lo: number, l2Off: number, index: number): { first: number; count: number } | undefined {
  const cs = s.g.clusterSize;
  if (hi & HI_COMPRESSED) {
    const d = decodeCompressed(hi, lo, s.g);
    const first = Math.floor(d.hostOffset / cs);
    return { first, count: Math.floor((d.hostOffset + d.hostLength - 1) / cs) - first + 1 };
  }
  const off = entryOffset(hi, lo, 'L2 entry');
  if (off === 0) return undefined;
  if (off % cs !== 0) {
    throw new CorruptImageError(`Cluster allocation offset 0x${off.toString(16)} unaligned (L2 offset: 0x${l2Off.toString(16)}, L2 index: 0x${index.toString(16)})`);
  }
  return { first: off / cs, count: 1 };
}

/** Calls `fn` for each host cluster the L1 table reaches (L2 tables included), once per reference. */
async function forEachReference(s: Qcow2State, l1: L1Table, fn: (cluster: number) => void): Promise<void> {
  const cs = s.g.clusterSize;
  const ctx = { l1: l1.view, l1Size: l1.size, g: s.g };
  for (let i = 0; i < l1.size; i++) {
    const l2Off = l1Entry(ctx, i);
    if (l2Off === 0) continue;
    const table = await s.l2Cache.get(l2Off);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let j = 0; j < s.g.l2Entries; j++) {
      const p = j * s.g.l2EntrySize;
      const ref = entryClusters(s, view.getUint32(p), view.getUint32(p + 4), l2Off, j);
      if (ref) for (let c = 0; c < ref.count; c++) fn(ref.first + c);
    }
    fn(l2Off / cs);
  }
}

/**
 * Refuses (before anything changes) when one more reference from `l1`
 * would overflow a refcount: with refcount_bits=1 any shared cluster does.
 * qemu reports this as EINVAL.
 */
export async function checkSaturation(s: Qcow2State, rc: Refcounts, l1: L1Table): Promise<void> {
  const max = refcountMax(s.g.refcountBits);
  const counts = new Map<number, number>();
  await forEachReference(s, l1, (c) => counts.set(c, (counts.get(c) ?? 0) + 1));
  for (const [c, n] of counts) {
    if ((await rc.get(c)) + n > max) {
      throw new UnsupportedError(
        `Cannot share cluster 0x${(c * s.g.clusterSize).toString(16)} once more: its refcount would exceed the largest value refcount_bits=${s.g.refcountBits} holds`,
        { errno: 22 },
      );
    }
  }
}

/**
 * Adds `addend` to every reference of `l1` and sets COPIED flags on its L2
 * entries and (in `l1.view`) its L1 entries. L2 tables whose refcount drops
 * to zero are dropped from the cache, so a freed cluster is never written.
 * Returns the L1 indexes whose entry changed.
 */
export async function updateSnapshotRefcount(s: Qcow2State, rc: Refcounts, l1: L1Table, addend: -1 | 0 | 1): Promise<Set<number>> {
  const cs = s.g.clusterSize;
  const ctx = { l1: l1.view, l1Size: l1.size, g: s.g };
  const changed = new Set<number>();
  for (let i = 0; i < l1.size; i++) {
    const l2Off = l1Entry(ctx, i);
    if (l2Off === 0) continue;
    const table = await s.l2Cache.get(l2Off);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let dirty = false;
    for (let j = 0; j < s.g.l2Entries; j++) {
      const p = j * s.g.l2EntrySize;
      const hi = view.getUint32(p);
      const lo = view.getUint32(p + 4);
      const ref = entryClusters(s, hi, lo, l2Off, j);
      let refcount = 0;
      if (ref && addend !== 0) for (let c = 0; c < ref.count; c++) refcount = await rc.add(ref.first + c, addend);
      else if (ref) refcount = await rc.get(ref.first);
      if (hi & HI_COMPRESSED) refcount = 2; // compressed clusters are never written in place
      const next = refcount === 1 ? (hi | HI_COPIED) >>> 0 : (hi & ~HI_COPIED) >>> 0;
      if (next !== hi) {
        view.setUint32(p, next);
        dirty = true;
      }
    }
    const l2Ref = addend !== 0 ? await rc.add(l2Off / cs, addend) : await rc.get(l2Off / cs);
    if (l2Ref === 0) s.l2Cache.drop(l2Off);
    else if (dirty) s.l2Cache.markDirty(l2Off, table);
    const hi = l1.view.getUint32(i * 8);
    const next = l2Ref === 1 ? (hi | HI_COPIED) >>> 0 : (hi & ~HI_COPIED) >>> 0;
    if (next !== hi) {
      l1.view.setUint32(i * 8, next);
      changed.add(i);
    }
  }
  return changed;
}
