/**
 * Walking every L2 table an image references (active and snapshot L1
 * tables, each shared table once) for the compat=0.10 downgrade: zero
 * clusters turned into data clusters (qcow2_expand_zero_clusters) and the
 * search for compressed clusters.
 */
import { throwIfAborted } from '../../core/abort.js';
import { readSlot, writeSlot } from './entries.js';
import { entryOffset, HI_COMPRESSED, type Geometry } from './layout.js';
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

interface L2Ref {
  readonly offset: number;
  /** Number of L1 tables holding it is not needed: the table's refcount says how shared it is. */
  readonly active: boolean;
}

async function l1Tables(s: Qcow2State): Promise<{ view: DataView; size: number; active: boolean }[]> {
  const out = [{ view: s.l1, size: s.l1Size, active: true }];
  for (const sn of s.snapshots) {
    const bytes = new Uint8Array(sn.l1Size * 8);
    await s.store.read(sn.l1TableOffset, bytes);
    out.push({ view: new DataView(bytes.buffer), size: sn.l1Size, active: false });
  }
  return out;
}

/** Every distinct L2 table referenced by any L1 table. */
async function allL2Tables(s: Qcow2State): Promise<L2Ref[]> {
  const seen = new Set<number>();
  const out: L2Ref[] = [];
  for (const t of await l1Tables(s)) {
    for (let i = 0; i < t.size; i++) {
      const off = entryOffset(t.view.getUint32(i * 8), t.view.getUint32(i * 8 + 4), `L1 entry ${i}`);
      if (!off || seen.has(off)) continue;
      seen.add(off);
      out.push({ offset: off, active: t.active });
    }
  }
  return out;
}

/** True when some L2 table (active or in a snapshot) holds a compressed cluster. */
export async function hasCompressedClusters(s: Qcow2State): Promise<boolean> {
  const g: Geometry = s.g;
  for (const t of await allL2Tables(s)) {
    const table = await s.l2Cache.get(t.offset);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let i = 0; i < g.l2Entries; i++) if (view.getUint32(i * g.l2EntrySize) & HI_COMPRESSED) return true;
  }
  return false;
}

/**
 * Turns every zero cluster into a data cluster of zeros (or, without a
 * backing file, an unallocated one), as a v2 image cannot express zero
 * clusters. New clusters take the refcount of the L2 table that points at
 * them. Zeros are written and flushed before the L2 tables change; the
 * tables go through the cache, which writes refcounts first.
 */
export async function expandZeroClusters(s: Qcow2State, rc: Refcounts, hasBacking: boolean, signal?: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<void> {
  const cs = s.g.clusterSize;
  const zeros = new Uint8Array(cs);
  const tables = await allL2Tables(s);
  const lazy = rc.lazy;
  rc.lazy = false; // no dirty bit covers this work: flush at every dependency
  try {
    for (const [k, t] of tables.entries()) {
      throwIfAborted(signal);
      const l2rc = await rc.get(t.offset / cs);
      const table = await s.l2Cache.get(t.offset);
      const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
      let wrote = false;
      for (let index = 0; index < s.g.l2Entries; index++) {
        const slot = { l2Off: t.offset, table, view, index };
        const e = readSlot(s, slot);
        if (e.compressed || !e.zero) continue;
        let host = e.host;
        if (host === 0) {
          if (!hasBacking) {
            writeSlot(s, s.l2Cache, slot, { host: 0, copied: false, raw: { hi: 0, lo: 0 } });
            continue;
          }
          host = await rc.allocate(1);
          if (l2rc > 1) await rc.add(host / cs, l2rc - 1);
        }
        await s.dataStore.write(host, zeros);
        wrote = true;
        writeSlot(s, s.l2Cache, slot, { host, copied: l2rc === 1 });
      }
      if (wrote) await s.store.flush();
      onProgress?.(k + 1, tables.length);
    }
    await rc.writeBack();
    await s.store.flush();
    await s.l2Cache.writeBack();
    await s.store.flush();
  } finally {
    rc.lazy = lazy;
  }
}
