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

/** The L2 table offsets of every L1 table, the active one first, then each snapshot's; each entry checked. */
async function l1Offsets(s: Qcow2State): Promise<number[][]> {
  const tables = [{ view: s.l1, size: s.l1Size }];
  for (const sn of s.snapshots) {
    const bytes = new Uint8Array(sn.l1Size * 8);
    await s.store.read(sn.l1TableOffset, bytes);
    tables.push({ view: new DataView(bytes.buffer), size: sn.l1Size });
  }
  return tables.map((t) => Array.from({ length: t.size }, (_, i) => entryOffset(t.view.getUint32(i * 8), t.view.getUint32(i * 8 + 4), `L1 entry ${i}`)));
}

/** True when some L2 table (active or in a snapshot) holds a compressed cluster. */
export async function hasCompressedClusters(s: Qcow2State): Promise<boolean> {
  const g: Geometry = s.g;
  for (const offset of new Set((await l1Offsets(s)).flat())) {
    if (!offset) continue;
    const table = await s.l2Cache.get(offset);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let i = 0; i < g.l2Entries; i++) if (view.getUint32(i * g.l2EntrySize) & HI_COMPRESSED) return true;
  }
  return false;
}

/** Expands the zero clusters of the L2 table at `l2Off` (see {@link expandZeroClusters}). */
async function expandTable(s: Qcow2State, rc: Refcounts, l2Off: number, hasBacking: boolean, zeros: Uint8Array): Promise<void> {
  const cs = s.g.clusterSize;
  const l2rc = await rc.get(l2Off / cs);
  const table = await s.l2Cache.get(l2Off);
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  let wrote = false;
  for (let index = 0; index < s.g.l2Entries; index++) {
    const slot = { l2Off, table, view, index };
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
    // bdrv_pwrite_zeroes without unmap: zeroed in place where the file allows it (a hole in a sparse file), written otherwise.
    if (!(await s.dataStore.zeroRange?.(host, cs, false))) await s.dataStore.write(host, zeros);
    wrote = true;
    writeSlot(s, s.l2Cache, slot, { host, copied: l2rc === 1 });
  }
  if (wrote) await s.store.flush();
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
  // Every entry is checked before anything is changed.
  const l1s = await l1Offsets(s);
  // Progress counts L1 entries, the active table's and then each snapshot's, as qemu's does.
  const entries = l1s.reduce((n, t) => n + t.length, 0);
  let visited = 0;
  const seen = new Set<number>();
  const lazy = rc.lazy;
  rc.lazy = false; // no dirty bit covers this work: flush at every dependency
  try {
    for (const offsets of l1s) {
      for (const off of offsets) {
        throwIfAborted(signal);
        if (off && !seen.has(off)) {
          seen.add(off);
          await expandTable(s, rc, off, hasBacking, zeros);
        }
        onProgress?.(++visited, entries);
      }
    }
    await rc.writeBack();
    await s.store.flush();
    await s.l2Cache.writeBack();
    await s.store.flush();
  } finally {
    rc.lazy = lazy;
  }
}
