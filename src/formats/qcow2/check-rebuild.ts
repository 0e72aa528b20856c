/**
 * Rebuilding the refcount structures from the computed counts (qemu's
 * rebuild_refcount_structure): new refblocks and a new reftable go into
 * clusters nothing references, are written and flushed, and only then does
 * one 12-byte header write switch to them. A crash before the switch
 * leaves the old structures in force; after it, the old ones are leaks.
 */
import { HEADER_FIELD } from './header.js';
import type { ComputedRefcounts } from './check-refmap.js';
import { writeRefcount } from './check-stored.js';
import type { CheckCtx } from './check-ctx.js';

/** alloc_clusters_imrt: `count` free clusters from `hint.first`, counted in `refs`. Returns the first cluster. */
function allocImrt(refs: ComputedRefcounts, count: number, hint: { first: number }): number {
  let cluster = hint.first;
  let run = 0;
  let firstGap = true;
  for (; cluster < refs.size && run < count; cluster++) {
    if (refs.get(cluster) === 0) {
      run++;
      if (firstGap) {
        hint.first = cluster;
        firstGap = false;
      }
    } else run = 0;
  }
  const start = cluster - run;
  for (let i = 0; i < count; i++) refs.set(start + i, 1);
  return start;
}

interface Reftable {
  entries: number[];
}

/** rebuild_refcounts_write_refblocks over clusters `[first, end)`; returns true when the reftable grew. */
async function writeRefblocks(ctx: CheckCtx, first: number, end: number, rt: Reftable): Promise<boolean> {
  const { s, refs } = ctx;
  const { clusterSize: cs, refcountBlockEntries: E, refcountBits: bits } = s.g;
  let grown = false;
  const hint = { first: 0 };
  for (let cluster = first; cluster < end; cluster++) {
    cluster = refs.nextUsed(cluster, end);
    if (cluster >= end) break;
    const bi = Math.floor(cluster / E);
    const blockStart = bi * E;
    let blockOff = rt.entries[bi] ?? 0;
    if (!blockOff) {
      if (hint.first < blockStart) hint.first = blockStart;
      const c = allocImrt(refs, 1, hint);
      blockOff = c * cs;
      if (c >= end) end = c + 1; // the refblock holding this refblock's count must be written too
      if (rt.entries.length <= bi) {
        const n = Math.ceil(((bi + 1) * 8) / cs) * (cs / 8);
        while (rt.entries.length < n) rt.entries.push(0);
        grown = true;
      }
      rt.entries[bi] = blockOff;
    }
    const block = new Uint8Array(cs);
    const view = new DataView(block.buffer);
    for (let k = 0; k < E; k++) {
      const v = refs.get(blockStart + k);
      if (v) writeRefcount(view, k, bits, v);
    }
    await s.store.write(blockOff, block);
    cluster = blockStart + E - 1;
  }
  return grown;
}

/**
 * Writes a new refcount structure for `ctx.refs` (which it updates with
 * the new clusters) and switches the header to it.
 */
export async function rebuildRefcountStructure(ctx: CheckCtx): Promise<void> {
  const { s, refs } = ctx;
  const cs = s.g.clusterSize;
  const rt: Reftable = { entries: [] };
  await writeRefblocks(ctx, 0, refs.size, rt);
  let tableCluster = 0;
  let tableClusters = 0;
  for (let grown = true; grown; ) {
    tableClusters = Math.ceil((rt.entries.length * 8) / cs);
    tableCluster = allocImrt(refs, tableClusters, { first: 0 });
    grown = await writeRefblocks(ctx, tableCluster, tableCluster + tableClusters, rt);
  }
  const bytes = new Uint8Array(tableClusters * cs);
  const view = new DataView(bytes.buffer);
  rt.entries.forEach((off, i) => {
    view.setUint32(i * 8, Math.floor(off / 0x100000000));
    view.setUint32(i * 8 + 4, off >>> 0);
  });
  await s.store.write(tableCluster * cs, bytes);
  await s.store.flush();
  const hdr = new Uint8Array(12);
  const hv = new DataView(hdr.buffer);
  hv.setUint32(0, Math.floor((tableCluster * cs) / 0x100000000));
  hv.setUint32(4, (tableCluster * cs) >>> 0);
  hv.setUint32(8, tableClusters);
  await s.store.write(HEADER_FIELD.refcountTableOffset, hdr);
  await s.store.flush();
  s.header.refcountTableOffset = tableCluster * cs;
  s.header.refcountTableClusters = tableClusters;
}
