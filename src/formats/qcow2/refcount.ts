/**
 * Refcount table and blocks (qcow2-refcount.c): read, allocate, free and
 * grow, for every refcount width from 1 to 64 bits. New refcount blocks
 * describe themselves (they sit in the first cluster of the range they
 * cover), so allocation never recurses.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../../io/byte-store.js';
import { TableCache } from './cache.js';
import type { Geometry } from './layout.js';

/** Reads entry `i` of a refcount block of `bits`-wide entries. */
export function getRefcountEntry(block: Uint8Array, i: number, bits: number): number {
  // The default width, read per cluster while allocating: without a DataView per call.
  if (bits === 16) return ((block[i * 2] ?? 0) << 8) | (block[i * 2 + 1] ?? 0);
  if (bits >= 8) {
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const pos = i * (bits / 8);
    if (bits === 8) return view.getUint8(pos);
    if (bits === 16) return view.getUint16(pos);
    if (bits === 32) return view.getUint32(pos);
    return Number(view.getBigUint64(pos));
  }
  const bit = i * bits;
  const byte = block[bit >>> 3] ?? 0;
  return (byte >>> (bit & 7)) & ((1 << bits) - 1);
}

/** Writes entry `i` of a refcount block. */
export function setRefcountEntry(block: Uint8Array, i: number, bits: number, value: number): void {
  if (bits === 16) {
    block[i * 2] = value >>> 8;
    block[i * 2 + 1] = value & 0xff;
    return;
  }
  if (bits >= 8) {
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const pos = i * (bits / 8);
    if (bits === 8) view.setUint8(pos, value);
    else if (bits === 16) view.setUint16(pos, value);
    else if (bits === 32) view.setUint32(pos, value);
    else view.setBigUint64(pos, BigInt(value));
    return;
  }
  const bit = i * bits;
  const mask = ((1 << bits) - 1) << (bit & 7);
  const old = block[bit >>> 3] ?? 0;
  block[bit >>> 3] = (old & ~mask) | ((value << (bit & 7)) & mask);
}

/** Largest refcount a width can hold (capped at 2^53 - 1). */
export function refcountMax(bits: number): number {
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

/** Parses a refcount table into block offsets (0 = no block). */
export function parseRefcountTable(bytes: Uint8Array, g: Geometry): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.length / 8);
  // Read as two 32-bit halves: a BigInt per entry cost ~3 ms of a short convert's CPU (four
  // 64 KiB tables read at open), more than its own copying.
  for (let i = 0; i < out.length; i++) {
    const high = view.getUint32(i * 8);
    const low = view.getUint32(i * 8 + 4) & 0xfffffe00;
    if (high === 0 && low === 0) continue;
    if (high > 0x1fffff) {
      throw new UnsupportedError(`Refcount block offset in reftable entry ${i} is above 2^53, the largest offset vdisk supports`);
    }
    const offset = high * 0x100000000 + (low >>> 0);
    if (offset % g.clusterSize !== 0) {
      throw new CorruptImageError(`Refblock offset 0x${offset.toString(16)} unaligned (reftable index: 0x${i.toString(16)})`);
    }
    out[i] = offset;
  }
  return out;
}

/**
 * Refcount blocks and table clusters needed to count `clusters` clusters
 * plus themselves (the fixed point of qcow2_refcount_metadata_size);
 * `generous` also counts half the table again, as qemu does when it grows
 * the table so that the next growth is far off.
 */
export function refcountStructuresFor(clusters: number, g: Pick<Geometry, 'clusterSize' | 'refcountBlockEntries'>, generous = false): { blocks: number; table: number } {
  const entriesPerBlock = g.refcountBlockEntries;
  const entriesPerTableCluster = g.clusterSize / 8;
  let table = 0;
  let blocks = 0;
  let n = 0;
  let last: number;
  let more = generous;
  do {
    last = n;
    blocks = Math.ceil((clusters + table + blocks) / entriesPerBlock);
    table = Math.ceil(blocks / entriesPerTableCluster);
    n = clusters + blocks + table;
    if (n === last && more) {
      clusters += Math.ceil(table / 2);
      n = 0;
      more = false;
    }
  } while (n !== last);
  return { blocks, table };
}

/** Where the header's refcount-table fields live and how to rewrite them. */
export interface RefcountTableHeader {
  offset: number;
  clusters: number;
  /** Writes the header's table offset and size in one write. */
  update(offset: number, clusters: number): Promise<void>;
}

/** The refcount structures of one open image. */
export class Refcounts {
  readonly #store: ByteStore;
  readonly #g: Geometry;
  readonly cache: TableCache;
  readonly #header: RefcountTableHeader;
  readonly #max: number;
  /** Block offsets by table index (in memory: may be longer than on disk while growing). */
  #table: Float64Array;
  /** Entries of the table as it is on disk. */
  #diskEntries: number;
  #freeHint = 0;
  /** Clusters freed while recording (collectFreed), else undefined. */
  #freed: number[] | undefined;
  /** Where multi-cluster searches start (after the last such allocation), so holes do not make them quadratic. */
  #runHint = 0;
  /**
   * Clusters below this may hold bytes: the file's end at open, and every
   * cluster referenced since. Unknown (everything may) until noteFileEnd().
   */
  #usedEnd = Number.POSITIVE_INFINITY;
  /** Skip the flushes between dependent writes (lazy refcounts: the dirty bit covers them). */
  lazy = false;
  /** Called for every new metadata cluster (refcount block, table), for overlap checks. */
  onMetadata: ((offset: number, length: number) => void) | undefined;
  /** Called when a metadata range stops being metadata (the old table after growth). */
  onMetadataFreed: ((offset: number, length: number) => void) | undefined;

  constructor(store: ByteStore, g: Geometry, table: Float64Array, header: RefcountTableHeader) {
    this.#store = store;
    this.#g = g;
    this.#table = table;
    this.#diskEntries = table.length;
    this.#header = header;
    this.#max = refcountMax(g.refcountBits);
    this.cache = new TableCache(store, g.clusterSize, LIMITS.qcow2RefcountCacheBytes);
  }

  /**
   * The end (in clusters) of everything that may hold bytes: clusters at or
   * after it were never written, so they read as zeros (a hole, or past the
   * end of the file) until something is written there.
   */
  get usedEnd(): number {
    return this.#usedEnd;
  }

  /** Records the file's size at open: anything below it may hold old bytes. */
  noteFileEnd(bytes: number): void {
    const end = Math.ceil(bytes / this.#g.clusterSize);
    this.#usedEnd = Number.isFinite(this.#usedEnd) ? Math.max(this.#usedEnd, end) : end;
  }

  /** Block offsets, by table index. */
  get table(): Float64Array {
    return this.#table;
  }

  /** Refcount of host cluster `cluster`. */
  async get(cluster: number): Promise<number> {
    const known = this.#peek(cluster);
    if (known !== undefined) return known;
    const bi = Math.floor(cluster / this.#g.refcountBlockEntries);
    const block = await this.cache.get(this.#table[bi]!);
    return getRefcountEntry(block, cluster % this.#g.refcountBlockEntries, this.#g.refcountBits);
  }

  /**
   * The refcount of `cluster` when it is known without reading (no block, or
   * its block cached): allocation walks clusters one by one, and an await per
   * cluster would cost more than the walk.
   */
  #peek(cluster: number): number | undefined {
    const bi = Math.floor(cluster / this.#g.refcountBlockEntries);
    const off = bi < this.#table.length ? this.#table[bi]! : 0;
    if (off === 0) return 0;
    const block = this.cache.peek(off);
    return block === undefined ? undefined : getRefcountEntry(block, cluster % this.#g.refcountBlockEntries, this.#g.refcountBits);
  }

  /** Adds `delta` to the refcount of `cluster` (its block must exist unless delta < 0). */
  async add(cluster: number, delta: number): Promise<number> {
    const bi = Math.floor(cluster / this.#g.refcountBlockEntries);
    let off = bi < this.#table.length ? this.#table[bi]! : 0;
    if (off === 0) {
      if (delta < 0) throw new CorruptImageError(`Refcount of cluster ${cluster} would drop below zero`);
      await this.#createBlocks(cluster + 1, new Set([bi]), cluster);
      off = bi < this.#table.length ? this.#table[bi]! : 0;
      if (off === 0) return this.add(cluster, delta);
    }
    return this.#apply(off, this.cache.peek(off) ?? (await this.cache.get(off)), cluster, delta);
  }

  #apply(off: number, block: Uint8Array, cluster: number, delta: number): number {
    if (delta > 0 && cluster >= this.#usedEnd) this.#usedEnd = cluster + 1;
    const i = cluster % this.#g.refcountBlockEntries;
    const v = getRefcountEntry(block, i, this.#g.refcountBits) + delta;
    if (v < 0) throw new CorruptImageError(`Refcount of cluster ${cluster} would drop below zero`);
    if (v > this.#max) throw new UnsupportedError(`Refcount overflow at cluster offset 0x${(cluster * this.#g.clusterSize).toString(16)} (refcount_bits=${this.#g.refcountBits})`);
    setRefcountEntry(block, i, this.#g.refcountBits, v);
    this.cache.markDirty(off, block);
    if (v === 0 && cluster < this.#freeHint) this.#freeHint = cluster;
    if (v === 0 && delta < 0) this.#freed?.push(cluster);
    return v;
  }

  /**
   * Starts recording the clusters whose refcount drops to zero, for the
   * caller to give back to the file system once nothing points at them
   * (qemu's discard queue; see discard.ts).
   */
  collectFreed(): void {
    this.#freed = [];
  }

  /** Stops recording; returns what {@link collectFreed} recorded since it was called. */
  takeFreed(): number[] {
    const freed = this.#freed ?? [];
    this.#freed = undefined;
    return freed;
  }

  /** Allocates `n` contiguous clusters (refcount 1 each); returns the host offset. */
  async allocate(n: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 16) throw new CorruptImageError(`Could not allocate ${n} clusters: the refcount structures keep changing`);
      while ((this.#peek(Math.max(1, this.#freeHint)) ?? (await this.get(Math.max(1, this.#freeHint)))) !== 0) this.#freeHint = Math.max(1, this.#freeHint) + 1;
      const from = Math.max(1, this.#freeHint, n > 1 ? this.#runHint : 0);
      const start = this.#findFreeCached(n, from) ?? (await this.#findFree(n, from));
      const missing = this.#missingBlocks(start, n);
      if (missing.size > 0) {
        await this.#createBlocks(start + n, missing, start);
        continue; // blocks sit after the run, so the run is still free: search again
      }
      for (let c = this.#takeCached(start, n); c < start + n; c++) await this.add(c, 1);
      // As qemu's free_cluster_index: the search moved past any smaller hole it skipped.
      this.#freeHint = start + n;
      if (n > 1) this.#runHint = start + n;
      return start * this.#g.clusterSize;
    }
  }

  /** The last cluster below `clusters` with a refcount, or -1 (qcow2_get_last_cluster). */
  async lastUsed(clusters: number): Promise<number> {
    for (let c = clusters - 1; c >= 0; c--) if ((await this.get(c)) !== 0) return c;
    return -1;
  }

  /**
   * qcow2_shrink_reftable: refcount blocks that count nothing (a block in
   * its own range may count itself) leave the table. The whole table is
   * rewritten and flushed first, then each such block's cluster is freed,
   * so that the file can end before it.
   */
  async dropUnusedBlocks(): Promise<void> {
    const cs = this.#g.clusterSize;
    const per = this.#g.refcountBlockEntries;
    const unused: number[] = [];
    for (let i = 0; i < this.#table.length; i++) {
      const off = this.#table[i]!;
      if (off === 0) continue;
      // A copy (the cache may hand out a Buffer, whose slice() is a view).
      const block = new Uint8Array(await this.cache.get(off));
      const own = off / cs;
      if (Math.floor(own / per) === i) setRefcountEntry(block, own % per, this.#g.refcountBits, 0);
      if (block.every((b) => b === 0)) unused.push(i);
    }
    if (unused.length === 0) return;
    const bytes = new Uint8Array(this.#table.length * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < this.#table.length; i++) view.setBigUint64(i * 8, unused.includes(i) ? 0n : BigInt(this.#table[i]!));
    await this.#store.write(this.#header.offset, bytes);
    await this.#store.flush();
    for (const i of unused) {
      const off = this.#table[i]!;
      await this.free(off, 1);
      this.#table[i] = 0;
      this.cache.drop(off);
      this.onMetadataFreed?.(off, cs);
    }
  }

  /** Drops one reference from each of `n` clusters at host `offset`. */
  async free(offset: number, n: number): Promise<void> {
    const first = Math.floor(offset / this.#g.clusterSize);
    for (let c = first; c < first + n; c++) await this.add(c, -1);
  }

  /**
   * #findFree() over cached blocks, entry by entry without a call or an
   * await per cluster (a convert allocates every cluster this way);
   * undefined when a block would have to be read.
   */
  #findFreeCached(n: number, from: number): number | undefined {
    const per = this.#g.refcountBlockEntries;
    let start = from;
    let run = 0;
    for (let c = from; ; ) {
      const bi = Math.floor(c / per);
      const off = bi < this.#table.length ? this.#table[bi]! : 0;
      const end = (bi + 1) * per;
      if (off === 0) {
        // No block: every cluster it would count is free.
        if (run === 0) start = c;
        run += end - c;
        if (run >= n) return start;
        c = end;
        continue;
      }
      const block = this.cache.peek(off);
      if (!block) return undefined;
      for (; c < end; c++) {
        if (getRefcountEntry(block, c - bi * per, this.#g.refcountBits) !== 0) {
          run = 0;
          continue;
        }
        if (run === 0) start = c;
        if (++run === n) return start;
      }
    }
  }

  /**
   * Takes a reference on clusters `[start, start+n)` (free, their blocks
   * existing) block by block while the blocks are cached; returns the first
   * cluster it did not take (the caller takes the rest with add()).
   */
  #takeCached(start: number, n: number): number {
    const per = this.#g.refcountBlockEntries;
    const bits = this.#g.refcountBits;
    let c = start;
    while (c < start + n) {
      const bi = Math.floor(c / per);
      const off = bi < this.#table.length ? this.#table[bi]! : 0;
      const block = off === 0 ? undefined : this.cache.peek(off);
      if (!block) return c;
      const end = Math.min(start + n, (bi + 1) * per);
      for (; c < end; c++) {
        const v = getRefcountEntry(block, c - bi * per, bits) + 1;
        if (v > this.#max) throw new UnsupportedError(`Refcount overflow at cluster offset 0x${(c * this.#g.clusterSize).toString(16)} (refcount_bits=${bits})`);
        setRefcountEntry(block, c - bi * per, bits, v);
      }
      this.cache.markDirty(off, block);
      if (c > this.#usedEnd) this.#usedEnd = c;
    }
    return c;
  }

  async #findFree(n: number, from: number): Promise<number> {
    let start = from;
    let run = 0;
    for (let c = from; ; c++) {
      if ((this.#peek(c) ?? (await this.get(c))) === 0) {
        if (run === 0) start = c;
        run++;
        if (run === n) return start;
      } else {
        run = 0;
      }
    }
  }

  #missingBlocks(start: number, n: number): Set<number> {
    const out = new Set<number>();
    const first = Math.floor(start / this.#g.refcountBlockEntries);
    const last = Math.floor((start + n - 1) / this.#g.refcountBlockEntries);
    for (let b = first; b <= last; b++) if (b >= this.#table.length || this.#table[b] === 0) out.add(b);
    return out;
  }

  /**
   * Creates the blocks in `missing` in a free run at or after cluster
   * `after` (they count themselves); `first` is the first cluster that
   * needs one.
   */
  async #createBlocks(after: number, missing: Set<number>, first: number): Promise<void> {
    let bstart = after;
    for (let k = missing.size; ; k = missing.size) {
      bstart = await this.#findFree(k, after);
      for (const b of this.#missingBlocks(bstart, k)) missing.add(b);
      if (missing.size === k) break;
    }
    const blocks = [...missing].sort((a, b) => a - b);
    const maxBlock = blocks[blocks.length - 1]!;
    if (maxBlock >= this.#table.length) {
      const b = blocks[0]!;
      if (b < this.#table.length || !(await this.#growAsQemu(b, after, Math.max(first, b * this.#g.refcountBlockEntries)))) await this.#grow(maxBlock);
      return;
    }
    const E = this.#g.refcountBlockEntries;
    const cs = this.#g.clusterSize;
    const bytes = new Uint8Array(blocks.length * cs);
    const index = new Map(blocks.map((b, i) => [b, i] as const));
    for (let i = 0; i < blocks.length; i++) {
      const hc = bstart + i;
      const owner = index.get(Math.floor(hc / E));
      if (owner !== undefined) setRefcountEntry(bytes.subarray(owner * cs, (owner + 1) * cs), hc % E, this.#g.refcountBits, 1);
      else await this.add(hc, 1);
    }
    if (bstart === 0) throw new CorruptImageError('Preventing invalid allocation of refcount block at offset 0');
    this.#usedEnd = Math.max(this.#usedEnd, bstart + blocks.length);
    await this.#store.write(bstart * cs, bytes);
    if (!this.lazy) await this.#store.flush();
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      this.#table[b] = (bstart + i) * cs;
      if (b < this.#diskEntries) await this.#writeTableEntry(b);
    }
    this.onMetadata?.(bstart * cs, bytes.length);
  }

  /**
   * qemu's table growth (alloc_refcount_block): block `b`, which counts
   * `cluster`, goes to the first free cluster at or after `after`, counting
   * itself; a table half again as big as needed and the blocks for the
   * range from the next block boundary on are placed at that boundary
   * (qcow2_refcount_area). False, with nothing changed, when the block
   * would not count itself.
   */
  async #growAsQemu(b: number, after: number, cluster: number): Promise<boolean> {
    const E = this.#g.refcountBlockEntries;
    const cs = this.#g.clusterSize;
    const at = await this.#findFree(1, after);
    if (Math.floor(at / E) !== b) return false;
    const block = new Uint8Array(cs);
    setRefcountEntry(block, at % E, this.#g.refcountBits, 1);
    await this.#store.write(at * cs, block);
    if (!this.lazy) await this.#store.flush();
    this.#usedEnd = Math.max(this.#usedEnd, at + 1);
    this.onMetadata?.(at * cs, cs);
    const boundary = Math.ceil(Math.max(cluster + 1, at + 1) / E) * E;
    await this.area(boundary, 0, { generous: true, block: { index: b, offset: at * cs } });
    return true;
  }

  async #writeTableEntry(i: number): Promise<void> {
    const e = new Uint8Array(8);
    new DataView(e.buffer).setBigUint64(0, BigInt(this.#table[i]!));
    await this.#store.write(this.#header.offset + i * 8, e);
  }

  /** Grows the table to hold index `bi`: new table elsewhere, header switched in one write. */
  async #grow(bi: number): Promise<void> {
    const perCluster = this.#g.clusterSize / 8;
    const want = Math.max(bi + 1, Math.ceil(this.#table.length * 1.5));
    const clusters = Math.ceil(want / perCluster);
    if (clusters * this.#g.clusterSize > LIMITS.qcow2MaxRefcountTableBytes) {
      throw new UnsupportedError('Reference count table too large (the image would exceed the 8 MiB refcount table limit)');
    }
    const next = new Float64Array(clusters * perCluster);
    next.set(this.#table);
    const old = { offset: this.#header.offset, clusters: this.#header.clusters };
    this.#table = next;
    const newOffset = await this.allocate(clusters);
    await this.cache.writeBack();
    const bytes = new Uint8Array(clusters * this.#g.clusterSize);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < next.length; i++) view.setBigUint64(i * 8, BigInt(this.#table[i]!));
    await this.#store.write(newOffset, bytes);
    await this.#store.flush();
    await this.#header.update(newOffset, clusters);
    await this.#store.flush();
    this.#header.offset = newOffset;
    this.#header.clusters = clusters;
    this.#diskEntries = next.length;
    this.onMetadata?.(newOffset, bytes.length);
    if (old.clusters > 0) {
      await this.free(old.offset, old.clusters);
      this.onMetadataFreed?.(old.offset, old.clusters * this.#g.clusterSize);
    }
  }

  /**
   * qcow2_refcount_area (exact size): refcount structures covering the file
   * up to cluster `start + additional` and themselves, placed at cluster
   * `start` (nothing is referenced from there on): the missing blocks, then
   * a new table of exactly the size needed, which the header switches to
   * before the old table is freed. Every cluster from `start` to the end of
   * the new table gets refcount 1. Returns the first cluster after them.
   * `generous` makes the table half again as big; `block` is a block
   * already written that the new table points at.
   *
   * @throws {UnsupportedError} "File too large" past the 8 MiB table limit
   */
  async area(start: number, additional: number, options: { generous?: boolean; block?: { index: number; offset: number } } = {}): Promise<number> {
    const E = this.#g.refcountBlockEntries;
    const cs = this.#g.clusterSize;
    const perCluster = cs / 8;
    const { blocks } = refcountStructuresFor(start + additional, this.#g, options.generous);
    const tableSize = Math.ceil((options.generous ? blocks + Math.ceil(blocks / 2) : blocks) / perCluster) * perCluster;
    if (tableSize * 8 > LIMITS.qcow2MaxRefcountTableBytes) throw new UnsupportedError('File too large', { errno: 27 });
    const next = new Float64Array(tableSize);
    next.set(this.#table.subarray(0, Math.min(this.#table.length, tableSize)));
    if (options.block) next[options.block.index] = options.block.offset;
    const first = Math.floor(start / E);
    let missing = 0;
    for (let i = first; i < blocks; i++) if (!next[i]) missing++;
    const tableAt = start + missing;
    const end = tableAt + tableSize / perCluster;
    let blockAt = start;
    for (let i = first; i < blocks; i++) {
      let off = next[i]!;
      let block: Uint8Array;
      if (off) block = await this.cache.get(off);
      else {
        off = blockAt++ * cs;
        next[i] = off;
        block = new Uint8Array(cs);
        await this.cache.put(off, block);
      }
      for (let c = Math.max(start, i * E); c < Math.min(end, (i + 1) * E); c++) setRefcountEntry(block, c - i * E, this.#g.refcountBits, 1);
      this.cache.markDirty(off, block);
    }
    await this.cache.writeBack();
    await this.#store.flush();
    const bytes = new Uint8Array(tableSize * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < tableSize; i++) view.setBigUint64(i * 8, BigInt(next[i]!));
    await this.#store.write(tableAt * cs, bytes);
    await this.#store.flush();
    await this.#header.update(tableAt * cs, tableSize / perCluster);
    await this.#store.flush();
    const old = { offset: this.#header.offset, clusters: this.#header.clusters };
    this.#table = next;
    this.#diskEntries = tableSize;
    this.#header.offset = tableAt * cs;
    this.#header.clusters = tableSize / perCluster;
    this.#usedEnd = Math.max(this.#usedEnd, end);
    this.onMetadata?.(start * cs, (end - start) * cs);
    if (old.clusters > 0) {
      await this.free(old.offset, old.clusters);
      this.onMetadataFreed?.(old.offset, old.clusters * cs);
    }
    return end;
  }

  /** Writes back dirty refcount blocks and flushes the store (unless lazy). */
  async writeBack(): Promise<void> {
    if (!this.cache.dirty) return;
    await this.cache.writeBack();
    if (!this.lazy) await this.#store.flush();
  }
}
