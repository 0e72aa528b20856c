/**
 * Changing the refcount width (amend -o refcount_bits=N, after qemu's
 * qcow2_change_refcount_order). Crash-safe: the new refcount blocks and
 * table are written past everything in use and flushed, the header is
 * switched in one write, and only then are the old structures released
 * (through the new ones). A crash before the switch leaves the old image
 * untouched (the new clusters are unreferenced and uncounted); after it,
 * leaks at worst.
 */
import { throwIfAborted } from '../../core/abort.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { rewriteHeader } from './backing.js';
import { makeGeometry, type Geometry } from './layout.js';
import { getRefcountEntry, parseRefcountTable, Refcounts, refcountMax, setRefcountEntry } from './refcount.js';
import type { Qcow2State } from './state.js';

/** Every host cluster's refcount under the current structures (index = cluster). */
async function readAllRefcounts(s: Qcow2State, table: Float64Array): Promise<Float64Array> {
  const g = s.g;
  const E = g.refcountBlockEntries;
  let lastBlock = -1;
  for (let i = 0; i < table.length; i++) if (table[i]) lastBlock = i;
  const counts = new Float64Array((lastBlock + 1) * E);
  const block = new Uint8Array(g.clusterSize);
  for (let bi = 0; bi <= lastBlock; bi++) {
    const off = table[bi]!;
    if (!off) continue;
    await s.store.read(off, block);
    for (let i = 0; i < E; i++) counts[bi * E + i] = getRefcountEntry(block, i, g.refcountBits);
  }
  return counts;
}

/**
 * Rewrites the refcount structures of `s` with `2^order`-bit entries. The
 * caller has flushed every cache; afterwards `s.g`, `s.header` and
 * `s.refcounts` describe the new structures (the old writer must not be used).
 *
 * @throws {InvalidArgumentError} when a refcount does not fit in the new width (qemu's message)
 */
export async function changeRefcountOrder(s: Qcow2State, order: number, signal?: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<void> {
  const old = s.refcounts;
  if (!old) throw new InvalidArgumentError(`Image '${s.filename}' is not open for writing`);
  const cs = s.g.clusterSize;
  const oldTable = old.table.slice();
  const oldTableOffset = s.header.refcountTableOffset;
  const oldTableClusters = s.header.refcountTableClusters;
  // qemu walks the old table three times (allocating, checking the allocation, writing) and reports
  // each entry of each walk; the same steps are reported here as the equivalent work is done.
  const walkEntries = (oldTableClusters * cs) / 8;
  const step = (walkIndex: number, entry: number): void => onProgress?.(walkIndex * walkEntries + entry, 3 * walkEntries);
  const walk = (index: number): void => {
    if (!onProgress) return;
    for (let i = 0; i <= walkEntries; i++) step(index, i);
  };
  const counts = await readAllRefcounts(s, oldTable);
  const bits = 2 ** order;
  const max = refcountMax(bits);
  let last = -1;
  for (let c = 0; c < counts.length; c++) {
    const v = counts[c]!;
    if (v === 0) continue;
    last = c;
    if (v > max) {
      // qemu's first walk stops at the old table's entry that covers the cluster.
      for (let i = 0; i <= Math.floor(c / s.g.refcountBlockEntries); i++) step(0, i);
      throw new InvalidArgumentError(`Cannot decrease refcount entry width to ${bits} bits: Cluster at offset 0x${(c * cs).toString(16)} has a refcount of ${v}`);
    }
  }
  walk(0);
  throwIfAborted(signal);
  const g: Geometry = makeGeometry(s.g.clusterBits, s.g.extendedL2, order);
  const E = g.refcountBlockEntries;
  // New structures go past everything in use and past the end of the file.
  const base = Math.max(last + 1, Math.ceil((await s.store.size()) / cs));
  const blocksFor = (extra: number): number[] => {
    const set = new Set<number>();
    for (let c = 0; c <= last; c++) if (counts[c]) set.add(Math.floor(c / E));
    for (let c = base; c < base + extra; c++) set.add(Math.floor(c / E));
    return [...set].sort((a, b) => a - b);
  };
  let blocks = blocksFor(0);
  let tableClusters = 0;
  for (;;) {
    const tableEntries = (blocks[blocks.length - 1] ?? 0) + 1;
    const t = Math.max(1, Math.ceil((tableEntries * 8) / cs));
    const next = blocksFor(blocks.length + t);
    if (next.length === blocks.length && t === tableClusters) break;
    blocks = next;
    tableClusters = t;
  }
  walk(1);
  const tableOffset = (base + blocks.length) * cs;
  const newCounts = (c: number): number => (c < counts.length ? counts[c]! : 0) + (c >= base && c < base + blocks.length + tableClusters ? 1 : 0);
  const blockBytes = new Uint8Array(blocks.length * cs);
  const fill = (): void => {
    blockBytes.fill(0);
    blocks.forEach((bi, k) => {
      const blk = blockBytes.subarray(k * cs, (k + 1) * cs);
      for (let i = 0; i < E; i++) {
        const v = newCounts(bi * E + i);
        if (v) setRefcountEntry(blk, i, bits, v);
      }
    });
  };
  fill();
  walk(2);
  const tableBytes = new Uint8Array(tableClusters * cs);
  const tview = new DataView(tableBytes.buffer);
  blocks.forEach((bi, k) => tview.setBigUint64(bi * 8, BigInt((base + k) * cs)));
  // 1. New structures, flushed before anything points at them.
  await s.store.write(base * cs, blockBytes);
  await s.store.write(tableOffset, tableBytes);
  await s.store.flush();
  throwIfAborted(signal);
  // 2. The switch: one header write (order, table offset and size).
  const h = s.header;
  const saved = { order: h.refcountOrder, offset: h.refcountTableOffset, clusters: h.refcountTableClusters };
  h.refcountOrder = order;
  h.refcountTableOffset = tableOffset;
  h.refcountTableClusters = tableClusters;
  try {
    await rewriteHeader(s);
  } catch (err) {
    Object.assign(h, { refcountOrder: saved.order, refcountTableOffset: saved.offset, refcountTableClusters: saved.clusters });
    throw err;
  }
  // 3. Release the old table and blocks through the new structures.
  const header = {
    offset: tableOffset,
    clusters: tableClusters,
    async update(offset: number, clusters: number): Promise<void> {
      h.refcountTableOffset = offset;
      h.refcountTableClusters = clusters;
      await rewriteHeader(s);
    },
  };
  const rc = new Refcounts(s.store, g, parseRefcountTable(tableBytes, g), header);
  await rc.free(oldTableOffset, oldTableClusters);
  for (const off of oldTable) if (off) await rc.free(off, 1);
  await rc.writeBack();
  await s.store.flush();
  (s as { g: Geometry }).g = g;
  s.refcounts = rc;
}
