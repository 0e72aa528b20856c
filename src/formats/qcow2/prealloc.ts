/**
 * Preallocating the grown part of a qcow2 image as qcow2_co_truncate does,
 * so that map, check and the host file come out as qemu-img's: `metadata`
 * (preallocate_co) maps every new cluster without writing its data, while
 * `falloc`/`full` put fresh refcount structures at the end of the file, the
 * data clusters contiguously after them, preallocate that range of the
 * host file, and then link the clusters. Either way only the copy-on-write
 * parts of the first and last cluster (what the guest had there) are
 * written as data.
 */
import type { ByteStore } from '../driver.js';
import { UnsupportedError, VdiskError } from '../../core/errors.js';
import { asStep, inStepWords, systemErrno } from '../../core/strerror.js';
import { fileGrowthError, truncateLikeQemu } from '../../io/truncate.js';
import { fillCluster, fillSubcluster, readSlot, writeSlot, type ClusterAccess, type EntryInfo, type Slot } from './entries.js';
import type { Qcow2State } from './state.js';

/** How the host file's new part is allocated. */
export type HostPrealloc = 'off' | 'falloc' | 'full';

const ALL_SUBCLUSTERS = 0xffffffff;

function slotAt(slot: Slot, index: number): Slot {
  return { ...slot, index };
}

/** Clusters from `offset` to the end of its L2 table. */
function tableRoom(s: Qcow2State, offset: number): number {
  return s.g.l2Entries - (Math.floor(offset / s.g.clusterSize) % s.g.l2Entries);
}

/** What the guest reads at `[from, to)` of the cluster at `cStart`, mapped by `e`. */
async function guestBytes(s: Qcow2State, e: EntryInfo, cStart: number, from: number, to: number): Promise<Uint8Array> {
  const buf = new Uint8Array(s.g.clusterSize);
  if (!s.g.extendedL2 || e.compressed) await fillCluster(s, e, cStart, buf);
  else {
    const sc = s.g.subclusterSize;
    for (let k = Math.floor(from / sc); k * sc < to; k++) await fillSubcluster(s, e, cStart, k, buf.subarray(k * sc, (k + 1) * sc));
  }
  return buf.subarray(from, to);
}

const ctz32 = (x: number): number => (x === 0 ? 32 : 31 - Math.clz32(x & -x));

/** Where the copied head of a newly allocated cluster starts (calculate_l2_meta's cow_start). */
function cowStartFrom(s: Qcow2State, e: EntryInfo, at: number): number {
  const sc = s.g.subclusterSize;
  if (e.compressed) return 0;
  const k = Math.floor(at / sc);
  if (e.hasHost) return s.g.extendedL2 ? Math.min(k, ctz32(e.allocMask)) * sc : 0;
  return k * sc;
}

/** Where the copied tail of a newly allocated cluster ends (calculate_l2_meta's cow_end). */
function cowEndTo(s: Qcow2State, e: EntryInfo, end: number): number {
  const sc = s.g.subclusterSize;
  if (e.compressed) return s.g.clusterSize;
  if (e.hasHost) return s.g.extendedL2 ? Math.max(Math.floor((end - 1) / sc) + 1, 32 - Math.clz32(e.allocMask)) * sc : s.g.clusterSize;
  return Math.ceil(end / sc) * sc;
}

/** Copies what the guest had at `[from, to)` of the cluster at `cStart` into the new host cluster. */
async function copyOnWrite(s: Qcow2State, a: ClusterAccess, e: EntryInfo, cStart: number, host: number, from: number, to: number): Promise<void> {
  if (to > from) await a.writeData(host + from, await guestBytes(s, e, cStart, from, to));
}

/** Grows `store` to `end`, preallocating the new part as `mode` says. */
async function extendStore(store: ByteStore, end: number, mode: HostPrealloc): Promise<void> {
  const size = await store.size();
  if (end <= size) return;
  if (mode === 'off') return truncateLikeQemu(store, end).catch((err: unknown) => Promise.reject(fileGrowthError(err, mode, 'resize')));
  if (!store.preallocate) throw new UnsupportedError(`Preallocation mode '${mode}' is not supported on '${store.name}'`);
  await store.preallocate(size, end - size, mode).catch((err: unknown) => Promise.reject(fileGrowthError(err, mode, 'fill')));
}

/** One L2 table's share of a range: its slots, the guest cluster of slot 0, where the share ends. */
interface Chunk {
  readonly slot: Slot;
  readonly base: number;
  readonly end: number;
}

/** Where a step of preallocate_co got to: the next guest offset, and the host offset of the byte before it. */
interface Step {
  readonly pos: number;
  readonly hostEnd: number;
}

const entryAt = (s: Qcow2State, k: Chunk, c: number): EntryInfo => readSlot(s, slotAt(k.slot, c - k.base));

/**
 * A cluster the image owns already is kept. A preallocated zero cluster
 * becomes a data cluster; its copy-on-write parts are zeroed first.
 */
async function keepCluster(s: Qcow2State, a: ClusterAccess, k: Chunk, pos: number): Promise<Step> {
  const cs = s.g.clusterSize;
  const c = Math.floor(pos / cs);
  const e = entryAt(s, k, c);
  const end = Math.min(k.end, (c + 1) * cs);
  if (e.zero) {
    if (pos > c * cs) await a.writeData(e.host, new Uint8Array(pos - c * cs));
    if (end < (c + 1) * cs) await a.writeData(e.host + end - c * cs, new Uint8Array((c + 1) * cs - end));
    writeSlot(s, s.l2Cache, slotAt(k.slot, c - k.base), { host: e.host, copied: true });
  }
  return { pos: end, hostEnd: e.host + end - c * cs };
}

/** The clusters from `pos` up to the next one the image owns get new host clusters, in one run. */
async function allocateRun(s: Qcow2State, a: ClusterAccess, k: Chunk, pos: number): Promise<Step> {
  const cs = s.g.clusterSize;
  const c = Math.floor(pos / cs);
  let n = 1;
  while ((c + n) * cs < k.end) {
    const f = entryAt(s, k, c + n);
    if (f.hasHost && f.copied) break;
    n++;
  }
  const host = s.externalData ? c * cs : await a.rc.allocate(n);
  const end = Math.min(k.end, (c + n) * cs);
  const first = entryAt(s, k, c);
  const last = entryAt(s, k, c + n - 1);
  const lastStart = (c + n - 1) * cs;
  await copyOnWrite(s, a, first, c * cs, host, cowStartFrom(s, first, pos - c * cs), pos - c * cs);
  if (end < (c + n) * cs) await copyOnWrite(s, a, last, lastStart, host + (n - 1) * cs, end - lastStart, cowEndTo(s, last, end - lastStart));
  for (let i = 0; i < n; i++) {
    const old = entryAt(s, k, c + i);
    writeSlot(s, s.l2Cache, slotAt(k.slot, c + i - k.base), { host: host + i * cs, copied: true, zeroMask: old.zeroMask, allocMask: old.allocMask });
    a.unref(old);
  }
  return { pos: end, hostEnd: host + end - c * cs };
}

/**
 * preallocate_co: maps every cluster of guest `[from, to)` that has no
 * cluster of its own (or a shared or compressed one) to a new host cluster,
 * copying only the guest's old bytes around `from` and `to`; clusters the
 * image owns already are kept. Subcluster bitmaps stay as they are. The
 * file holding the data then reaches the last mapped byte (`dataMode`
 * preallocating it, as with a data file and falloc/full).
 */
export async function preallocateMetadata(s: Qcow2State, a: ClusterAccess, from: number, to: number, dataMode: HostPrealloc): Promise<void> {
  const cs = s.g.clusterSize;
  let step: Step = { pos: from, hostEnd: 0 };
  try {
    while (step.pos < to) {
      const slot = await a.slotFor(step.pos);
      const c0 = Math.floor(step.pos / cs);
      const k: Chunk = { slot, base: c0 - slot.index, end: Math.min(to, (c0 + tableRoom(s, step.pos)) * cs) };
      while (step.pos < k.end) {
        const e = entryAt(s, k, Math.floor(step.pos / cs));
        step = e.hasHost && e.copied ? await keepCluster(s, a, k, step.pos) : await allocateRun(s, a, k, step.pos);
      }
    }
    // qemu writes each new L2 table (and the refcounts before it) as it allocates it (l2_allocate),
    // before the file is grown to the last data cluster: a file that cannot hold the tables fails here.
    await a.rc.writeBack();
    await s.l2Cache.writeBack();
  } catch (err) {
    throw inStepWords(err, 'Allocating clusters failed');
  }
  await extendStore(s.dataStore, step.hostEnd, dataMode);
}

/**
 * The falloc/full path of qcow2_co_truncate (no data file): refcount
 * structures for everything at the end of the used file, the data clusters
 * of guest `[from, to)` (from the cluster holding `from`) right after them,
 * that range of the file preallocated, then the L2 entries linked with the
 * guest's old bytes before `from` copied. With `allocateSubclusters` (the
 * new part must read as zeros) every subcluster is marked allocated;
 * otherwise subcluster bitmaps stay as they are.
 */
export async function preallocateData(s: Qcow2State, a: ClusterAccess, from: number, to: number, mode: 'falloc' | 'full', allocateSubclusters: boolean): Promise<void> {
  const cs = s.g.clusterSize;
  const fileSize = await s.store.size();
  const last = await a.rc.lastUsed(Math.ceil(fileSize / cs));
  const usedEnd = last >= 0 ? last + 1 : Math.ceil(fileSize / cs);
  const first = Math.floor(from / cs);
  let count = Math.ceil(to / cs) - first;
  const start = await asStep('Failed to resize refcount structures', a.rc.area(usedEnd, count + Math.ceil(count / s.g.l2Entries) + 1));
  for (let c = start; c < start + count; c++) await a.rc.add(c, 1);
  await extendStore(s.store, (start + count) * cs, mode).catch((err: unknown) => {
    throw err instanceof VdiskError && systemErrno(err) ? err.rephrase(`Failed to resize underlying file: ${err.message}`) : err;
  });
  let host = start * cs;
  for (let c = first; count > 0; ) {
    const slot = await a.slotFor(c * cs);
    const n = Math.min(count, tableRoom(s, c * cs));
    if (c === first) await copyOnWrite(s, a, readSlot(s, slot), c * cs, host, 0, from - c * cs);
    for (let i = 0; i < n; i++) {
      const old = readSlot(s, slotAt(slot, slot.index + i));
      const masks = allocateSubclusters ? { zeroMask: 0, allocMask: ALL_SUBCLUSTERS } : { zeroMask: old.zeroMask, allocMask: old.allocMask };
      writeSlot(s, s.l2Cache, slotAt(slot, slot.index + i), { host: host + i * cs, copied: true, ...masks });
      a.unref(old);
    }
    host += n * cs;
    c += n;
    count -= n;
  }
}
