/**
 * Emptying an image after commit (qemu's qcow2_make_empty, by its
 * discard-everything path): every active L2 table is unlinked from the L1
 * table, the L1 change is flushed, and only then are the tables and the
 * clusters they reference given back. A crash in between leaks clusters;
 * it never leaves a reference to a freed cluster.
 */
import { compressedSpan, readSlot } from './entries.js';
import { l1Entry } from './cluster.js';
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

/**
 * Drops every active cluster of `s` so the image reads through to its
 * backing file. The caller has flushed the writer; `forget` is called for
 * every freed L2 table (drop it from caches and the overlap map).
 */
export async function makeQcow2Empty(s: Qcow2State, rc: Refcounts, forget: (l2Offset: number) => void): Promise<void> {
  const cs = s.g.clusterSize;
  const tables: number[] = [];
  for (let i = 0; i < s.l1Size; i++) {
    const off = l1Entry(s, i);
    if (off) tables.push(off);
  }
  if (tables.length === 0) return;
  // What the tables reference, read before they are unlinked.
  const frees: number[] = [];
  for (const l2Off of tables) {
    const table = await s.l2Cache.get(l2Off);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let index = 0; index < s.g.l2Entries; index++) {
      const e = readSlot(s, { l2Off, table, view, index });
      if (e.compressed) {
        const span = compressedSpan(s, e);
        for (let k = 0; k < span.clusters; k++) frees.push(span.offset / cs + k);
      } else if (e.host !== 0 && !s.externalData) {
        frees.push(e.host / cs);
      }
    }
  }
  // 1. Unlink: the whole L1 table reads as unallocated (a torn write leaves some old entries: still valid).
  s.l1Bytes.fill(0);
  await s.store.write(s.header.l1TableOffset, s.l1Bytes);
  await s.store.flush();
  // 2. Give back the tables and their clusters.
  for (const l2Off of tables) {
    await rc.add(l2Off / cs, -1);
    forget(l2Off);
  }
  for (const c of frees) await rc.add(c, -1);
  await rc.cache.writeBack();
  await s.store.flush();
}
