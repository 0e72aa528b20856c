/**
 * L2 entries as the writer sees them: classification of one entry, the
 * content a cluster (or subcluster) had before a write, and entry updates.
 */
import type { TableCache } from './cache.js';
import type { Refcounts } from './refcount.js';
import { decompressCluster } from './compressed.js';
import {
  decodeCompressed,
  entryOffset,
  HI_COMPRESSED,
  HI_COPIED,
  HI_OFFSET_MASK,
  LO_ZERO,
  splitOffset,
  writeEntry,
} from './layout.js';
import type { Qcow2State } from './state.js';

/** One L2 table slot. */
export interface Slot {
  readonly l2Off: number;
  readonly table: Uint8Array;
  readonly view: DataView;
  readonly index: number;
}

/** What an entry says about its cluster. */
export interface EntryInfo {
  readonly hi: number;
  readonly lo: number;
  readonly zeroMask: number;
  readonly allocMask: number;
  readonly compressed: boolean;
  /** Host cluster offset (0 when none; see hasHost). */
  readonly host: number;
  readonly hasHost: boolean;
  readonly copied: boolean;
  /** Standard entries: the zero flag. */
  readonly zero: boolean;
}

/** What grow.ts and prealloc.ts use of the writer (see Qcow2Writer.clusterAccess). */
export interface ClusterAccess {
  /** The image's refcounts. */
  readonly rc: Refcounts;
  /** The L2 slot of a guest offset, the table allocated or unshared as a write would. */
  slotFor(gOff: number): Promise<Slot>;
  /** Queues the refcount decrements for what an entry pointed at (applied on flush). */
  unref(e: EntryInfo): void;
  /** Writes guest data at a host offset, refusing (and marking corrupt) a write over metadata. */
  writeData(host: number, data: Uint8Array): Promise<void>;
  /** Runs `fn`; a corruption error stops the writer. */
  guard<T>(fn: () => Promise<T>): Promise<T>;
  /** A guest write (allocating, copy-on-write), not recorded in dirty bitmaps. */
  write(offset: number, data: Uint8Array): Promise<void>;
}

/**
 * Reads and classifies slot `slot` (or entry `index` of its table: the
 * writer's per-cluster loops name neighbours without a slot object each).
 */
export function readSlot(s: Qcow2State, slot: Slot, index = slot.index): EntryInfo {
  const size = s.g.l2EntrySize;
  const p = index * size;
  const hi = slot.view.getUint32(p);
  const lo = slot.view.getUint32(p + 4);
  const zeroMask = size === 16 ? slot.view.getUint32(p + 8) : 0;
  const allocMask = size === 16 ? slot.view.getUint32(p + 12) : 0;
  const compressed = (hi & HI_COMPRESSED) !== 0;
  const copied = (hi & HI_COPIED) !== 0;
  const host = compressed ? 0 : entryOffset(hi, lo, 'L2 entry');
  const hasHost = !compressed && (host !== 0 || (s.externalData && copied));
  const zero = !s.g.extendedL2 && (lo & LO_ZERO) !== 0;
  return { hi, lo, zeroMask, allocMask, compressed, host, hasHost, copied, zero };
}

/** Writes slot `slot` (or entry `index` of its table) (host offset, flags, bitmaps) and marks its table dirty. */
export function writeSlot(
  s: Qcow2State,
  cache: TableCache,
  slot: Slot,
  e: { host: number; copied: boolean; zero?: boolean; zeroMask?: number; allocMask?: number; raw?: { hi: number; lo: number } },
  index = slot.index,
): void {
  const p = index * s.g.l2EntrySize;
  if (e.raw) writeEntry(slot.view, p, e.raw.hi, e.raw.lo);
  else {
    const { hi, lo } = splitOffset(e.host);
    writeEntry(slot.view, p, hi | (e.copied ? HI_COPIED : 0), lo | (e.zero ? LO_ZERO : 0));
  }
  if (s.g.extendedL2) {
    slot.view.setUint32(p + 8, (e.zeroMask ?? 0) >>> 0);
    slot.view.setUint32(p + 12, (e.allocMask ?? 0) >>> 0);
  }
  cache.markDirty(slot.l2Off, slot.table);
}

/** True when entries `index`..`index+n-1` of `slot` are all zero (unallocated, no flags): no EntryInfo is made for them. */
export function vacantEntries(s: Qcow2State, slot: Slot, index: number, n: number): boolean {
  const words = s.g.l2EntrySize / 4;
  for (let p = index * words, end = (index + n) * words; p < end; p++) if (slot.view.getUint32(p * 4) !== 0) return false;
  return true;
}

/**
 * Maps entries `index`..`index+n-1` of `slot` to the COPIED host clusters
 * from `host` on, as writeSlot does entry by entry, marking the table dirty
 * once for the run.
 */
export function mapRun(s: Qcow2State, cache: TableCache, slot: Slot, index: number, n: number, host: number): void {
  const size = s.g.l2EntrySize;
  const cs = s.g.clusterSize;
  for (let i = 0; i < n; i++) {
    const p = (index + i) * size;
    const h = host + i * cs;
    writeEntry(slot.view, p, (Math.floor(h / 0x100000000) & HI_OFFSET_MASK) | HI_COPIED, h % 0x100000000 >>> 0);
    if (size === 16) {
      slot.view.setUint32(p + 8, 0);
      slot.view.setUint32(p + 12, 0);
    }
  }
  cache.markDirty(slot.l2Off, slot.table);
}

/** Host clusters a compressed entry's data spans (to free them). */
export function compressedSpan(s: Qcow2State, e: EntryInfo): { offset: number; clusters: number } {
  const d = decodeCompressed(e.hi, e.lo, s.g);
  const cs = s.g.clusterSize;
  const first = Math.floor(d.hostOffset / cs);
  const last = Math.floor((d.hostOffset + d.hostLength - 1) / cs);
  return { offset: first * cs, clusters: last - first + 1 };
}

/** Decodes a compressed entry's cluster into `into` (cluster size). */
async function readCompressedEntry(s: Qcow2State, e: EntryInfo, into: Uint8Array): Promise<void> {
  const d = decodeCompressed(e.hi, e.lo, s.g);
  const input = new Uint8Array(Math.min(d.hostLength, 2 * s.g.clusterSize));
  await s.store.read(d.hostOffset, input);
  await decompressCluster(s.header.compressionType, input, into, d.hostOffset);
}

/** Reads what the layers below hold at guest `[offset, offset+into.length)` (zeros past the end). */
async function readBacking(s: Qcow2State, offset: number, into: Uint8Array): Promise<void> {
  into.fill(0);
  if (!s.backingReader || offset >= s.virtualSize) return;
  const n = Math.min(into.length, s.virtualSize - offset);
  await s.backingReader(offset, into.subarray(0, n));
}

/**
 * The content a whole standard cluster had before a write, into `into`
 * (zero-filled by the caller).
 */
export async function fillCluster(s: Qcow2State, e: EntryInfo, cStart: number, into: Uint8Array): Promise<void> {
  if (e.compressed) return readCompressedEntry(s, e, into);
  if (e.zero) return;
  if (e.hasHost) {
    await s.dataStore.read(e.host, into);
    return;
  }
  await readBacking(s, cStart, into);
}

/** Extended L2: the content subcluster `k` had, into `into` (subcluster size). */
export async function fillSubcluster(s: Qcow2State, e: EntryInfo, cStart: number, k: number, into: Uint8Array): Promise<void> {
  const bit = 2 ** k;
  const sc = s.g.subclusterSize;
  if (Math.floor(e.zeroMask / bit) % 2) {
    into.fill(0);
    return;
  }
  if (Math.floor(e.allocMask / bit) % 2 && e.hasHost) {
    await s.dataStore.read(e.host + k * sc, into);
    return;
  }
  await readBacking(s, cStart + k * sc, into);
}
