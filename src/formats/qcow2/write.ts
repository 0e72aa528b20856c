/**
 * Writing into a qcow2 image: cluster allocation with refcount updates,
 * copy-on-write of partial clusters from the backing reader, zero clusters,
 * discard, compressed clusters, subcluster-granular writes with extended L2.
 *
 * Crash-safe order on flush: refcount blocks (flushed) → L2 tables
 * (flushed) → L1 entries (flushed) → then refcount decrements of what was
 * unmapped. Guest data is written before the L2 entry that points at it.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { splitAt } from '../../core/split.js';
import { CryptStore } from '../crypto/crypt-store.js';
import type { BackingRef, ImageWriter } from '../driver.js';
import { setQcow2Backing } from './backing.js';
import { l1Entry } from './cluster.js';
import { compressCluster, compressClusters } from './compressed.js';
import { CompressedSpace } from './compressed-space.js';
import { compressedSpan, fillCluster, fillSubcluster, mapRun, readSlot, vacantEntries, writeSlot, type ClusterAccess, type EntryInfo, type Slot } from './entries.js';
import { HEADER_FIELD, writeHeaderU64 } from './header.js';
import {
  encodeCompressed,
  HI_COPIED,
  INCOMPAT_DIRTY,
  subclusterRange,
} from './layout.js';
import { DataWrites } from './data-writes.js';
import { makeQcow2Empty } from './make-empty.js';
import { buildMetadataMap, markCorrupt, setL1, writeL1, type MetadataMap } from './metadata.js';
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

/** Longest run of clusters allocated and written in one go. */
const MAX_RUN_BYTES = 8 * 1024 * 1024;
/** Unmapped clusters queued before a flush applies their refcount decrements. */
const MAX_PENDING_FREES = 4096;

interface PendingFree {
  readonly offset: number;
  readonly clusters: number;
  readonly l2: boolean;
}

/** The qcow2 ImageWriter. Calls arrive serialized (the device's write lock). */
export class Qcow2Writer implements ImageWriter {
  readonly #s: Qcow2State;
  readonly #rc: Refcounts;
  #meta: MetadataMap | undefined;
  readonly #l1Dirty = new Set<number>();
  #frees: PendingFree[] = [];
  #dirtyBitSet = false;
  #broken: Error | undefined;
  readonly #packed: CompressedSpace;
  #zeroCluster: Uint8Array | undefined;
  /** End of the last cluster whose unwritten tail was left as a hole; close() makes the file reach it. */
  #allocatedEnd = 0;
  /** Data writes started and not awaited; no L2 table is written before they land. */
  readonly #data = new DataWrites((err) => (this.#broken ??= err));

  constructor(s: Qcow2State, rc: Refcounts) {
    this.#s = s;
    this.#rc = rc;
    this.#packed = new CompressedSpace(rc, s.g);
    s.l2Cache.beforeWrite = async () => {
      await this.#data.landed();
      await rc.writeBack();
    };
    rc.onMetadata = (off, len) => this.#meta?.add(off, len, 'refcount block');
    rc.onMetadataFreed = (off, len) => this.#meta?.remove(off, len);
  }

  /**
   * Forgets the metadata map and the compressed-data cursor (after
   * snapshot or resize code moved tables or freed clusters); both are rebuilt
   * on the next write.
   */
  resetMetadata(): void {
    this.#meta = undefined;
    this.#packed.reset();
  }

  get #cs(): number {
    return this.#s.g.clusterSize;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const finish = await this.beginWrite(offset, data);
    await finish();
  }

  /**
   * Allocates and maps like write(), but whole fresh clusters' data is only
   * started: convert's next write allocates while it lands. Crash order holds
   * because no L2 table is written before the data it points at has landed
   * (the L2 cache's beforeWrite waits for it).
   */
  async beginWrite(offset: number, data: Uint8Array): Promise<() => Promise<void>> {
    return this.#data.collect(() => this.#writeNow(offset, data));
  }

  async #writeNow(offset: number, data: Uint8Array): Promise<void> {
    if (!this.#begun) await this.#begin();
    else if (this.#broken) throw this.#broken;
    // One L2 table at a time: each piece's clusters share one slot table.
    for (const p of splitAt(offset, data.length, this.#s.g.l2Entries * this.#cs)) {
      const slot = this.#cachedSlot(p.offset) ?? (await this.#slotFor(p.offset));
      const piece = data.subarray(p.pos, p.pos + p.length);
      await this.#guard(() => (this.#s.g.extendedL2 ? this.#writeExtended(slot, p.offset, piece) : this.#writeStandard(slot, p.offset, piece)));
    }
    if (this.#freesOverdue) await this.flush();
  }

  /** Nothing is left for #begin to set up (convert's writes skip its await). */
  get #begun(): boolean {
    return this.#meta !== undefined && (this.#dirtyBitSet || !this.#rc.lazy);
  }

  async #begin(): Promise<void> {
    if (this.#broken) throw this.#broken;
    // Persistent bitmaps record writes through bitmap-ops.ts (withBitmaps wraps this writer).
    this.#meta ??= buildMetadataMap(this.#s, this.#rc.table);
    if (this.#rc.lazy && !this.#dirtyBitSet) {
      const h = this.#s.header;
      h.incompatible |= BigInt(INCOMPAT_DIRTY);
      await writeHeaderU64(this.#s, HEADER_FIELD.incompatible, h.incompatible);
      await this.#s.store.flush();
      this.#dirtyBitSet = true;
    }
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CorruptImageError) this.#broken = err;
      throw err;
    }
  }

  /**
   * The L2 slot of guest offset `gOff` when its table is this image's own
   * (COPIED) and cached: what #slotFor would return, without a promise.
   */
  #cachedSlot(gOff: number): Slot | undefined {
    const s = this.#s;
    const cluster = Math.floor(gOff / this.#cs);
    const l1i = Math.floor(cluster / s.g.l2Entries);
    if (l1i >= s.l1Size || (s.l1.getUint32(l1i * 8) & HI_COPIED) === 0) return undefined;
    const l2Off = l1Entry(s, l1i);
    const table = l2Off === 0 ? undefined : s.l2Cache.cached(l2Off);
    return table && { l2Off, table, view: new DataView(table.buffer, table.byteOffset, table.byteLength), index: cluster % s.g.l2Entries };
  }

  /** The L2 slot of guest offset `gOff`, allocating or copying the L2 table as needed. */
  async #slotFor(gOff: number): Promise<Slot> {
    const s = this.#s;
    const cluster = Math.floor(gOff / this.#cs);
    const l1i = Math.floor(cluster / s.g.l2Entries);
    if (l1i >= s.l1Size) throw new CorruptImageError(`L1 table is too small for guest offset ${gOff}`);
    const cur = l1Entry(s, l1i);
    const copied = (s.l1.getUint32(l1i * 8) & HI_COPIED) !== 0;
    let l2Off = cur;
    let table: Uint8Array;
    if (cur !== 0 && copied) table = await s.l2Cache.get(cur);
    else {
      l2Off = await this.#rc.allocate(1);
      await this.#checkOverlapMeta(l2Off);
      // A copy: the cache's tables are Buffers, whose slice() would alias the shared table.
      table = cur ? new Uint8Array(await s.l2Cache.get(cur)) : new Uint8Array(this.#cs);
      if (cur) this.#frees.push({ offset: cur, clusters: 1, l2: true });
      await s.l2Cache.put(l2Off, table);
      this.#meta?.add(l2Off, this.#cs, 'active L2 table');
      setL1(s, l1i, l2Off);
      this.#l1Dirty.add(l1i);
    }
    return { l2Off, table, view: new DataView(table.buffer, table.byteOffset, table.byteLength), index: cluster % s.g.l2Entries };
  }

  async #checkOverlapMeta(offset: number): Promise<void> {
    const what = this.#meta?.overlap(offset, this.#cs);
    if (what) throw await markCorrupt(this.#s, `Preventing invalid allocation of L2 table at offset 0x${offset.toString(16)} (overlaps with ${what})`);
  }

  /** Refuses (marking the image corrupt) a guest data write over metadata. */
  /**
   * Refuses a data write onto metadata, marking the image corrupt (qemu's
   * overlap check). Synchronous when there is no overlap, so a write's hot
   * path awaits nothing: callers await only what this returns.
   */
  #checkDataOverlap(host: number, length: number): Promise<never> | undefined {
    const what = this.#s.externalData ? undefined : this.#meta?.overlap(host, length);
    return what === undefined ? undefined : markCorrupt(this.#s, `Preventing invalid write on metadata (overlaps with ${what})`).then((err) => Promise.reject(err));
  }

  async #writeData(host: number, data: Uint8Array, guest?: number): Promise<void> {
    const refused = this.#checkDataOverlap(host, data.length);
    if (refused) await refused;
    await this.#put(host, data, guest);
  }

  /**
   * Stores guest data at `host`. The legacy AES cipher numbers its IVs by
   * guest sector, so those writes need the guest offset they stand for;
   * without one the AES data store refuses the write (crypt.ts).
   */
  #put(host: number, data: Uint8Array, guest: number | undefined): Promise<void> {
    const s = this.#s;
    if (s.crypt?.kind === 'aes' && s.crypt.transform && guest !== undefined) {
      return new CryptStore(s.rawDataStore ?? s.dataStore, s.crypt.transform, 0, guest - host, Number.MAX_SAFE_INTEGER).write(host, data);
    }
    return s.dataStore.write(host, data);
  }

  #slotAt(slot: Slot, index: number): Slot {
    return { ...slot, index };
  }

  /** Standard L2: in-place runs and allocated runs, each one store write. */
  async #writeStandard(slot: Slot, gOff: number, chunk: Uint8Array): Promise<void> {
    const cs = this.#cs;
    const first = Math.floor(gOff / cs);
    let p = 0;
    while (p < chunk.length) {
      const cur = gOff + p;
      const c = Math.floor(cur / cs);
      const e = readSlot(this.#s, slot, slot.index + (c - first));
      const inPlace = e.hasHost && e.copied && !e.zero;
      let n = 1;
      const maxN = Math.max(1, Math.floor(MAX_RUN_BYTES / cs));
      const lastC = Math.floor((gOff + chunk.length - 1) / cs);
      // An allocating run goes on over vacant entries without decoding them (a new image's are all vacant).
      const vacantRun = !inPlace && !(e.hasHost && e.copied);
      while (c + n <= lastC && n < maxN) {
        if (vacantRun && vacantEntries(this.#s, slot, slot.index + (c + n - first), 1)) {
          n++;
          continue;
        }
        const f = readSlot(this.#s, slot, slot.index + (c + n - first));
        const fIn = f.hasHost && f.copied && !f.zero;
        if (inPlace ? !fIn || f.host !== e.host + n * cs : fIn || (e.hasHost && e.copied)) break;
        n++;
      }
      const len = Math.min(chunk.length - p, (c + n) * cs - cur);
      if (inPlace) {
        // Encrypted data is written in whole sectors, read-modify-write at the edges: the sector read must see
        // what earlier writes (still landing) put there, or their bytes are overwritten with stale ones.
        if (this.#s.crypt) await this.#data.landed();
        await this.#writeData(e.host + (cur - c * cs), chunk.subarray(p, p + len), cur);
      }
      else await this.#allocRun(slot, slot.index + (c - first), c, n, cur, chunk.subarray(p, p + len));
      p += len;
    }
  }

  /** Allocates `n` clusters from guest cluster `c`, fills partial ends from old content, writes, relinks. */
  async #allocRun(slot: Slot, index: number, c: number, n: number, cur: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    const cs = this.#cs;
    // Vacant entries (a new image's) point at nothing: they need no decoding and nothing to free.
    const vacant = !s.backingReader && !s.externalData && vacantEntries(s, slot, index, n);
    const olds: EntryInfo[] = [];
    if (!vacant) for (let i = 0; i < n; i++) olds.push(readSlot(s, slot, index + i));
    const reuse = n === 1 && olds[0] !== undefined && olds[0].hasHost && olds[0].copied;
    const neverUsed = this.#rc.usedEnd;
    const host = reuse ? olds[0]!.host : s.externalData ? c * cs : await this.#rc.allocate(n);
    const start = cur - c * cs;
    const end = start + data.length;
    // Fresh clusters of a standalone image (convert's case): what the data does not cover reads as
    // zeros, written from a shared zero buffer, so nothing is staged or copied; and nothing reads
    // through to a backing file meanwhile, so under beginWrite the data may land after this returns.
    const whole = start === 0 && end === n * cs;
    if (!reuse && !s.backingReader && !s.externalData && olds.every((o) => !o.hasHost && (whole || !o.compressed))) {
      const refused = this.#checkDataOverlap(host, n * cs);
      if (refused) await refused;
      // Clusters never written before (past everything the file held or referenced) already read
      // as zeros: only the data goes out, as qemu zeroes them with fallocate instead of writing.
      const neverWritten = host / cs >= neverUsed;
      const pieces: [number, Uint8Array][] = [];
      // An encrypted image's zeros read back only if written encrypted: data and zeros go out as one buffer.
      if (s.crypt) pieces.push([host, encryptedRun(data, start, n * cs)]);
      else {
        pieces.push([host + start, data]);
        if (start > 0 && !neverWritten) pieces.push([host, this.#zeros(start)]);
        if (end < n * cs) {
          if (!neverWritten) pieces.push([host + end, this.#zeros(n * cs - end)]);
          else this.#allocatedEnd = Math.max(this.#allocatedEnd, host + n * cs);
        }
      }
      // (every piece lies in the run that starts at guest cluster c, so its guest offset follows from its host one)
      const started = pieces.map(([at, bytes]) => this.#data.start(() => this.#put(at, bytes, c * cs + (at - host))));
      if (!this.#data.collecting) await Promise.all(started);
      mapRun(s, s.l2Cache, slot, index, n, host);
      for (const old of olds) this.#unref(old);
      return;
    }
    // Whole clusters go out as they are: no zeroed staging buffer, no copy.
    let buf = data;
    if (start > 0 || end < n * cs) {
      buf = new Uint8Array(n * cs);
      if (start > 0) await fillCluster(s, olds[0]!, c * cs, buf.subarray(0, cs));
      if (end < n * cs && (n > 1 || start === 0)) await fillCluster(s, olds[n - 1]!, (c + n - 1) * cs, buf.subarray((n - 1) * cs));
      buf.set(data, start);
    }
    await this.#writeData(host, buf, c * cs);
    for (let i = 0; i < n; i++) {
      writeSlot(s, s.l2Cache, slot, { host: host + i * cs, copied: true }, index + i);
      if (!reuse) this.#unref(olds[i]!);
    }
  }

  /** `length` (< one cluster) zero bytes from a buffer shared by every write and never written into. */
  #zeros(length: number): Uint8Array {
    this.#zeroCluster ??= new Uint8Array(this.#cs);
    return this.#zeroCluster.subarray(0, length);
  }

  /** Queues the refcount decrements for what an entry pointed at. */
  #unref(e: EntryInfo): void {
    if (e.compressed) {
      const span = compressedSpan(this.#s, e);
      this.#frees.push({ offset: span.offset, clusters: span.clusters, l2: false });
    } else if (e.host !== 0 && !this.#s.externalData) {
      this.#frees.push({ offset: e.host, clusters: 1, l2: false });
    }
  }

  /** Extended L2: one cluster at a time, subcluster-granular. */
  async #writeExtended(slot: Slot, gOff: number, chunk: Uint8Array): Promise<void> {
    const cs = this.#cs;
    const first = Math.floor(gOff / cs);
    for (const p of splitAt(gOff, chunk.length, cs)) {
      await this.#writeExtCluster(this.#slotAt(slot, slot.index + (p.index - first)), p.index * cs, p.inUnit, chunk.subarray(p.pos, p.pos + p.length));
    }
  }

  async #writeExtCluster(slot: Slot, cStart: number, from: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    const cs = this.#cs;
    const sc = s.g.subclusterSize;
    const e = readSlot(s, slot);
    const k0 = Math.floor(from / sc);
    const k1 = Math.floor((from + data.length - 1) / sc);
    const touched = subclusterRange(k0, k1 - k0 + 1);
    if (e.compressed || (e.hasHost && !e.copied && !s.externalData)) {
      // Copy the whole cluster to a new one (decompressed or unshared).
      const host = await this.#rc.allocate(1);
      const buf = new Uint8Array(cs);
      if (e.compressed) await fillCluster(s, e, cStart, buf);
      else for (let k = 0; k < 32; k++) await fillSubcluster(s, e, cStart, k, buf.subarray(k * sc, (k + 1) * sc));
      buf.set(data, from);
      await this.#writeData(host, buf, cStart);
      const allocMask = e.compressed ? 0xffffffff : (e.allocMask | touched) >>> 0;
      writeSlot(s, s.l2Cache, slot, { host, copied: true, allocMask, zeroMask: e.compressed ? 0 : (e.zeroMask & ~touched) >>> 0 });
      this.#unref(e);
      return;
    }
    const host = e.hasHost ? e.host : s.externalData ? cStart : await this.#rc.allocate(1);
    const spanStart = k0 * sc;
    const buf = new Uint8Array((k1 - k0 + 1) * sc);
    if (from > spanStart) await fillSubcluster(s, e, cStart, k0, buf.subarray(0, sc));
    if (from + data.length < (k1 + 1) * sc && (k1 > k0 || from === spanStart)) {
      await fillSubcluster(s, e, cStart, k1, buf.subarray((k1 - k0) * sc));
    }
    buf.set(data, from - spanStart);
    await this.#writeData(host + spanStart, buf, cStart + spanStart);
    writeSlot(s, s.l2Cache, slot, { host, copied: true, allocMask: (e.allocMask | touched) >>> 0, zeroMask: (e.zeroMask & ~touched) >>> 0 });
  }

  async writeZeroes(offset: number, length: number, options: { mayUnmap: boolean }): Promise<void> {
    await this.#begin();
    const s = this.#s;
    const unit = s.g.subclusterSize;
    // Zero flags need v3; a v2 image without a backing file discards instead (its unallocated clusters read as zeros), as qemu does.
    if (s.version < 3 && s.backingReader) return this.#writeZeroBuffers(offset, length);
    const end = offset + length;
    const aStart = Math.min(end, Math.ceil(offset / unit) * unit);
    const aEnd = Math.max(aStart, Math.floor(end / unit) * unit);
    const tailEnd = end === s.virtualSize ? end : aEnd;
    if (aStart > offset) await this.#zeroPartial(offset, aStart - offset, options.mayUnmap);
    await this.#zeroAligned(aStart, tailEnd, options.mayUnmap);
    if (end > tailEnd) await this.#zeroPartial(tailEnd, end - tailEnd, options.mayUnmap);
    if (this.#freesOverdue) await this.flush();
  }

  /** Zeroes whole subclusters `[from, to)` (to may be the image end). */
  async #zeroAligned(from: number, to: number, mayUnmap: boolean): Promise<void> {
    for (let pos = from; pos < to; ) {
      const cStart = Math.floor(pos / this.#cs) * this.#cs;
      const end = Math.min(cStart + this.#cs, to);
      const slot = await this.#slotFor(pos);
      if (this.#s.version < 3) this.#discardSlot(slot);
      else await this.#guard(() => this.#zeroInCluster(slot, cStart, pos - cStart, end - cStart, mayUnmap));
      pos = end;
    }
  }

  /**
   * Zeroes part of one subcluster. As qemu does, when the subcluster holds
   * no data and the rest of it reads as zeros already, the whole subcluster
   * becomes a zero one; otherwise zeros are written as data.
   */
  async #zeroPartial(offset: number, length: number, mayUnmap: boolean): Promise<void> {
    const s = this.#s;
    const unit = s.g.subclusterSize;
    const sStart = Math.floor(offset / unit) * unit;
    const cStart = Math.floor(offset / this.#cs) * this.#cs;
    const e = readSlot(s, await this.#slotFor(offset));
    const k = (sStart - cStart) / unit;
    const zeroFlag = s.g.extendedL2 ? Math.floor(e.zeroMask / 2 ** k) % 2 === 1 : e.zero;
    const holdsData = e.compressed || (s.g.extendedL2 ? Math.floor(e.allocMask / 2 ** k) % 2 === 1 : e.hasHost && !e.zero);
    if (!holdsData && (zeroFlag || !s.backingReader)) return this.#zeroAligned(sStart, Math.min(sStart + unit, s.virtualSize), mayUnmap);
    await this.#writeZeroBuffers(offset, length);
  }

  async #zeroInCluster(slot: Slot, cStart: number, from: number, to: number, mayUnmap: boolean): Promise<void> {
    const s = this.#s;
    const e = readSlot(s, slot);
    const whole = from === 0 && (to === this.#cs || cStart + to >= s.virtualSize);
    if (!s.g.extendedL2) {
      const keep = !mayUnmap && e.hasHost && e.copied;
      writeSlot(s, s.l2Cache, slot, { host: keep ? e.host : 0, copied: keep, zero: true });
      if (!keep) this.#unref(e);
      return;
    }
    if (whole) {
      const keep = !mayUnmap && e.hasHost && e.copied;
      writeSlot(s, s.l2Cache, slot, { host: keep ? e.host : 0, copied: keep, zeroMask: 0xffffffff, allocMask: 0 });
      if (!keep) this.#unref(e);
      return;
    }
    if (e.compressed || (e.hasHost && !e.copied && !s.externalData)) {
      // Partial zeroing of a shared or compressed cluster: copy it first.
      await this.#writeExtCluster(slot, cStart, from, new Uint8Array(to - from));
      return;
    }
    const sc = s.g.subclusterSize;
    const mask = subclusterRange(from / sc, Math.ceil((to - from) / sc));
    writeSlot(s, s.l2Cache, slot, { host: e.host, copied: e.copied, zeroMask: (e.zeroMask | mask) >>> 0, allocMask: (e.allocMask & ~mask) >>> 0 });
  }

  /** Makes a cluster unallocated, freeing what it pointed at. */
  #discardSlot(slot: Slot): void {
    const e = readSlot(this.#s, slot);
    if (!e.compressed && !e.hasHost && e.hi === 0 && e.lo === 0 && e.zeroMask === 0 && e.allocMask === 0) return;
    writeSlot(this.#s, this.#s.l2Cache, slot, { host: 0, copied: false });
    this.#unref(e);
  }

  async #writeZeroBuffers(offset: number, length: number): Promise<void> {
    const chunk = new Uint8Array(Math.min(length, 1024 * 1024));
    for (let pos = offset; pos < offset + length; pos += chunk.length) {
      const n = Math.min(chunk.length, offset + length - pos);
      await this.write(pos, chunk.subarray(0, n));
    }
  }

  /**
   * Drops the clusters a shrink cuts off. Not a guest write: the bitmap
   * wrapper does not mark it (qemu's truncate leaves dirty bitmaps alone).
   */
  async dropPastEnd(offset: number, length: number): Promise<void> {
    await this.discard(offset, length);
  }

  async discard(offset: number, length: number): Promise<void> {
    await this.#begin();
    const cs = this.#cs;
    const end = offset + length;
    const first = Math.ceil(offset / cs) * cs;
    const last = end === this.#s.virtualSize ? end : Math.floor(end / cs) * cs;
    for (let pos = first; pos < last; pos += cs) {
      this.#discardSlot(await this.#slotFor(pos));
    }
    if (this.#freesOverdue) await this.flush();
  }

  /** Compresses one cluster (padded with zeros) without touching metadata: safe to run concurrently. */
  async compressUnit(data: Uint8Array): Promise<Uint8Array | null> {
    // A whole cluster is compressed where it lies (callers await this before reusing it); a short one is padded first.
    if (data.length === this.#cs) return (await compressCluster(this.#s.header.compressionType, data)) ?? null;
    const unit = new Uint8Array(this.#cs);
    unit.set(data.subarray(0, this.#cs));
    return (await compressCluster(this.#s.header.compressionType, unit, true)) ?? null;
  }

  /** Compresses a run of whole clusters in one request, without touching metadata (see ImageWriter.compressUnits). */
  async compressUnits(data: Uint8Array, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<void> {
    await compressClusters(this.#s.header.compressionType, this.#cs, data, skipZeros, out, sizes);
  }

  async writeCompressed(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<void> {
    const finish = await this.beginWriteCompressed(offset, data, compressed);
    await finish();
  }

  /**
   * Places and maps a compressed cluster like writeCompressed(), its bytes
   * only started (as beginWrite does for plain clusters): the next cluster is
   * placed while they land. Crash order holds as for beginWrite: no L2 table
   * is written before the data it points at has landed.
   */
  async beginWriteCompressed(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<() => Promise<void>> {
    await this.#beginCompressed();
    const packed = compressed === undefined ? await this.compressUnit(data) : compressed;
    return this.beginWriteCompressedRun(offset, data, packed ?? new Uint8Array(0), Int32Array.of(packed ? packed.length : 0));
  }

  /**
   * Writes a run of clusters compressUnits() packed (ImageWriter.beginWriteCompressedRun).
   * Per L2 table, the table comes first, then the clusters' bytes in order
   * (QEMU's layout: each compressed cluster right after the one before);
   * bytes placed back to back go to the file as one write, and the entries
   * are set only once their bytes are on the way, so no L2 table written
   * meanwhile points at data not yet written.
   */
  async beginWriteCompressedRun(offset: number, data: Uint8Array, packed: Uint8Array, sizes: Int32Array): Promise<() => Promise<void>> {
    await this.#beginCompressed();
    const cs = this.#cs;
    const perTable = this.#s.g.l2Entries;
    const finish = await this.#data.collect(async () => {
      let pos = 0;
      for (let i = 0; i < sizes.length; ) {
        const at = offset + i * cs;
        if ((sizes[i] as number) <= 0) {
          if ((sizes[i] as number) < 0) throw new RangeError('An all-zero unit is not part of a compressed run');
          await this.#writeNow(at, data.subarray(i * cs, (i + 1) * cs));
          i++;
          continue;
        }
        // The compressed clusters from here to the end of this L2 table or the next plain one.
        let end = i;
        const tableEnd = (Math.floor(at / cs / perTable) + 1) * perTable - Math.floor(offset / cs);
        while (end < sizes.length && end < tableEnd && (sizes[end] as number) > 0) end++;
        const slot = await this.#slotFor(at);
        const hosts: number[] = [];
        for (let k = i; k < end; k++) hosts.push(await this.#guard(() => this.#allocCompressed(sizes[k] as number)));
        this.#startPacked(hosts, sizes.subarray(i, end), packed.subarray(pos));
        for (let k = i; k < end; k++) {
          const n = sizes[k] as number;
          const cslot = this.#slotAt(slot, slot.index + (k - i));
          const old = readSlot(this.#s, cslot);
          writeSlot(this.#s, this.#s.l2Cache, cslot, { host: 0, copied: false, raw: encodeCompressed(hosts[k - i] as number, n, this.#s.g) });
          this.#unref(old);
          pos += n;
        }
        i = end;
      }
    });
    if (this.#freesOverdue) await this.flush();
    return finish;
  }

  async #beginCompressed(): Promise<void> {
    await this.#begin();
    if (this.#s.externalData) throw new UnsupportedError('Compressed writes are not supported with an external data file');
    if (this.#s.crypt) throw new UnsupportedError('Compression and encryption not supported at the same time');
  }

  /** Host bytes for one compressed cluster (QEMU's qcow2_alloc_bytes), checked against the metadata. */
  async #allocCompressed(length: number): Promise<number> {
    const host = await this.#packed.allocate(length);
    await this.#checkDataOverlap(host, length);
    return host;
  }

  /** Starts the writes of compressed clusters at `hosts` (their bytes back to back in `packed`), one per contiguous span. */
  #startPacked(hosts: readonly number[], sizes: Int32Array, packed: Uint8Array): void {
    let spanHost = 0;
    let from = 0;
    let to = 0;
    const start = (): void => {
      if (to === from) return;
      const host = spanHost;
      const bytes = packed.subarray(from, to);
      void this.#data.start(() => this.#put(host, bytes, undefined));
    };
    for (const [k, host] of hosts.entries()) {
      if (k === 0 || host !== spanHost + (to - from)) {
        start();
        spanHost = host;
        from = to;
      }
      to += sizes[k] as number;
    }
    start();
  }

  /** Enough clusters wait to be freed that a flush should release them (checked without a promise). */
  get #freesOverdue(): boolean {
    return this.#frees.length > MAX_PENDING_FREES;
  }

  /** Writes metadata back in the crash-safe order, then applies queued frees. */
  async flush(): Promise<void> {
    await this.#data.landed();
    if (this.#broken) return;
    const s = this.#s;
    if (s.externalData) await s.dataStore.flush();
    await this.#rc.writeBack();
    await s.l2Cache.writeBack();
    if (this.#l1Dirty.size) {
      if (!this.#rc.lazy) await s.store.flush();
      await writeL1(s, this.#l1Dirty);
    }
    await s.store.flush();
    if (this.#frees.length) {
      const frees = this.#frees;
      this.#frees = [];
      this.#packed.reset();
      for (const f of frees) await this.#applyFree(f);
      await this.#rc.writeBack();
      await s.store.flush();
    }
  }

  async #applyFree(f: PendingFree): Promise<void> {
    const cs = this.#cs;
    for (let i = 0; i < f.clusters; i++) {
      const off = f.offset + i * cs;
      const left = await this.#rc.add(off / cs, -1);
      if (left === 0 && f.l2) {
        this.#s.l2Cache.drop(off);
        this.#meta?.remove(off);
      }
    }
  }

  /**
   * The cluster-level operations growing an image needs (grow.ts,
   * prealloc.ts): L2 slots allocated as writes allocate them, queued frees,
   * overlap-checked data writes, corruption stops.
   */
  async clusterAccess(): Promise<ClusterAccess> {
    await this.#begin();
    return {
      rc: this.#rc,
      slotFor: (gOff) => this.#slotFor(gOff),
      unref: (e) => this.#unref(e),
      writeData: (host, data) => this.#writeData(host, data),
      guard: (fn) => this.#guard(fn),
      write: (offset, data) => this.write(offset, data),
    };
  }

  // --- backing chains and amend (commit, rebase, amend) ---
  /** Drops every active cluster so the image reads through to its backing file (make-empty.ts). */
  async makeEmpty(): Promise<void> {
    await this.#begin();
    await this.flush();
    this.#packed.reset();
    await this.#guard(() =>
      makeQcow2Empty(this.#s, this.#rc, (off) => {
        this.#s.l2Cache.drop(off);
        this.#meta?.remove(off);
      }),
    );
  }

  /** Rewrites the backing file name and format in the header, after flushing (backing.ts). */
  async setBacking(ref: BackingRef | undefined): Promise<void> {
    if (this.#broken) throw this.#broken;
    await this.flush();
    await setQcow2Backing(this.#s, ref);
  }

  /** Refuses every later write: amend rebuilt structures this writer caches; reopen the image. */
  retire(reason: Error): void {
    this.#broken ??= reason;
  }

  /** Flushes and, with lazy refcounts, clears the dirty bit. */
  async close(): Promise<void> {
    await this.flush();
    // The file ends where its last cluster ends, as when every byte of it had been written.
    if (!this.#broken && this.#allocatedEnd > (await this.#s.store.size())) await this.#s.store.truncate(this.#allocatedEnd);
    if (this.#dirtyBitSet && !this.#broken) {
      const h = this.#s.header;
      h.incompatible &= ~BigInt(INCOMPAT_DIRTY);
      await writeHeaderU64(this.#s, HEADER_FIELD.incompatible, h.incompatible);
      await this.#s.store.flush();
      this.#dirtyBitSet = false;
    }
  }
}

/** Fresh clusters of an encrypted image: the data at `start` of a zeroed run of `bytes`. */
function encryptedRun(data: Uint8Array, start: number, bytes: number): Uint8Array {
  const run = new Uint8Array(bytes);
  run.set(data, start);
  return run;
}
