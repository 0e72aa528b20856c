/**
 * A sparse extent (KDMV or COWD): grain directory → grain tables → grains.
 * Lookups go through a bounded grain-table cache; tables being modified
 * live in a `dirty` map until the writer puts them on disk.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore, CompressedExtent, Extent } from '../driver.js';
import { readCompressedGrain, readCompressedGrains } from './grain-codec.js';
import type { SparseGeometry } from './header.js';
import { GTE_ZEROED, MAX_EXTENT_SECTORS, SECTOR } from './layout.js';
import { pushExtent } from '../extent-merge.js';

/** Most grains one mapping call looks at, so a call stays cheap. */
const MAP_GRAINS = 16384;

/** How one grain reads. */
export type GrainState = { kind: 'unallocated' } | { kind: 'zero' } | { kind: 'data'; host: number };

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Reads a little-endian u32 table (in place on little-endian hosts: directories reach 128 MiB). */
async function readTable(store: ByteStore, offset: number, entries: number): Promise<Uint32Array> {
  const bytes = new Uint8Array(entries * 4);
  await store.read(offset, bytes);
  if (LITTLE_ENDIAN) return new Uint32Array(bytes.buffer, 0, entries);
  const t = new Uint32Array(entries);
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < entries; i++) t[i] = v.getUint32(i * 4, true);
  return t;
}

/** Serializes a u32 table slice little-endian. */
export function tableBytes(t: Uint32Array, from = 0, to = t.length): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(t.buffer, t.byteOffset + from * 4, (to - from) * 4).slice();
  const out = new Uint8Array((to - from) * 4);
  const v = new DataView(out.buffer);
  for (let i = from; i < to; i++) v.setUint32((i - from) * 4, t[i] ?? 0, true);
  return out;
}

export class SparseExtent {
  readonly store: ByteStore;
  readonly geom: SparseGeometry;
  /** Grain directory: sector of each grain table (0 = none). */
  readonly gd: Uint32Array;
  /** Redundant grain directory, when the extent keeps one. */
  readonly rgd: Uint32Array | undefined;
  /** Tables being changed, by directory index; consulted before the cache. */
  readonly dirty = new Map<number, Uint32Array>();
  readonly #cache = new Map<number, Uint32Array>();
  readonly #cacheCap: number;
  /** Next free byte for allocation (sector aligned). */
  next: number;

  constructor(store: ByteStore, geom: SparseGeometry, gd: Uint32Array, rgd: Uint32Array | undefined, fileBytes: number) {
    this.store = store;
    this.geom = geom;
    this.gd = gd;
    this.rgd = rgd;
    this.#cacheCap = Math.max(4, Math.floor(LIMITS.vmdkGrainTableCacheBytes / (geom.gtes * 4)));
    this.next = Math.ceil(Math.ceil(fileBytes / SECTOR) * SECTOR / geom.grainBytes) * geom.grainBytes;
  }

  /** Reads the directories of `geom` from `store`. */
  static async open(store: ByteStore, geom: SparseGeometry): Promise<SparseExtent> {
    const gd = await readTable(store, geom.gdOffset, geom.gdEntries);
    const rgd = geom.rgdOffset ? await readTable(store, geom.rgdOffset, geom.gdEntries) : undefined;
    return new SparseExtent(store, geom, gd, rgd, await store.size());
  }

  get capacity(): number {
    return this.geom.capacityBytes;
  }

  /** The grain table at directory index `gdi`, or undefined when the directory has none. */
  async table(gdi: number): Promise<Uint32Array | undefined> {
    const d = this.dirty.get(gdi);
    if (d) return d;
    if (gdi >= this.gd.length) {
      throw new CorruptImageError(`Grain directory index ${gdi} is beyond the directory's ${this.gd.length} entries`, { file: this.store.name });
    }
    const sector = this.gd[gdi] ?? 0;
    if (sector === 0) return undefined;
    const hit = this.#cache.get(sector);
    if (hit) {
      this.#cache.delete(sector);
      this.#cache.set(sector, hit);
      return hit;
    }
    const t = await readTable(this.store, sector * SECTOR, this.geom.gtes);
    if (this.#cache.size >= this.#cacheCap) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(sector, t);
    return t;
  }

  /** Drops a table from the read cache (after it moved on disk). */
  forget(sector: number): void {
    this.#cache.delete(sector);
  }

  /** The raw grain-table entry of grain `gi`. */
  async gte(gi: number): Promise<number> {
    const t = await this.table(Math.floor(gi / this.geom.gtes));
    return t ? (t[gi % this.geom.gtes] ?? 0) : 0;
  }

  /** What grain `gi` holds. */
  async grain(gi: number): Promise<GrainState> {
    return this.classify(await this.gte(gi));
  }

  classify(gte: number): GrainState {
    if (gte === 0) return { kind: 'unallocated' };
    if (gte === GTE_ZEROED && this.geom.zeroGrain) return { kind: 'zero' };
    return { kind: 'data', host: gte * SECTOR };
  }

  /**
   * Appends the mapping of extent-relative `[rel, rel+length)` to `out`,
   * with guest offsets shifted by `base`. Covers a non-empty prefix, and
   * stops once `maxExtents` extents are complete (the next has begun).
   */
  async mapping(rel: number, length: number, base: number, out: Extent[], maxExtents = Infinity): Promise<void> {
    const g = this.geom.grainBytes;
    const end = Math.min(rel + length, this.capacity);
    const gtes = this.geom.gtes;
    let pos = rel;
    let tableIndex = -1;
    let table: Uint32Array | undefined;
    for (let count = 0; pos < end && count < MAP_GRAINS && out.length <= maxExtents; count++) {
      const gi = Math.floor(pos / g);
      const gdi = Math.floor(gi / gtes);
      if (gdi !== tableIndex) {
        tableIndex = gdi;
        table = await this.table(gdi);
        if (!table) {
          // no grain table: the whole table's span is unallocated
          const n = Math.min((gdi + 1) * gtes * g, end) - pos;
          pushExtent(out, { kind: 'unallocated', offset: base + pos, length: n });
          pos += n;
          continue;
        }
      }
      const inGrain = pos - gi * g;
      const raw = table?.[gi % gtes] ?? 0;
      if (raw === 0 && inGrain === 0 && table) {
        // a run of unallocated entries, taken in one step
        let k = gi % gtes;
        while (k < gtes && table[k] === 0) k++;
        const n = Math.min((gdi * gtes + k) * g, end) - pos;
        pushExtent(out, { kind: 'unallocated', offset: base + pos, length: n });
        pos += n;
        continue;
      }
      const n = Math.min(g - inGrain, end - pos);
      const st = this.classify(raw);
      const offset = base + pos;
      if (st.kind === 'unallocated') pushExtent(out, { kind: 'unallocated', offset, length: n });
      else if (st.kind === 'zero') pushExtent(out, { kind: 'zero', offset, length: n, allocated: false });
      else if (this.geom.compressed) out.push({ kind: 'compressed', offset, length: n, hostOffset: st.host, hostLength: g, unitOffset: base + gi * g });
      else pushExtent(out, { kind: 'data', offset, length: n, store: this.store, hostOffset: st.host + inGrain });
      pos += n;
    }
  }

  /** Inflates the compressed grain at `host` (grain `gi`) into `unit`. */
  async readCompressed(host: number, gi: number, unit: Uint8Array): Promise<void> {
    const g = this.geom.grainBytes;
    const need = Math.min(g, this.capacity - gi * g);
    await readCompressedGrain(this.store, host, this.geom.markers, g, need, unit);
  }

  /**
   * Inflates the compressed extents `extents` (consecutive, in this extent,
   * which starts at guest offset `base`) into `into`, which they cover.
   */
  async readCompressedRun(extents: readonly CompressedExtent[], base: number, into: Uint8Array): Promise<void> {
    const g = this.geom.grainBytes;
    let outAt = 0;
    const grains = extents.map((e) => {
      const gi = (e.unitOffset - base) / g;
      const from = e.offset - e.unitOffset;
      const piece = { host: e.hostOffset, need: Math.min(g, this.capacity - gi * g), outAt, from, count: Math.min(e.length, Math.max(0, g - from)) };
      // Bytes past a grain's end (none in a consistent image) read as zeros; the rest is decoded over
      // (filling all of `into` first costs a byte-wise pass when it is shared memory).
      if (piece.count < e.length) into.fill(0, outAt + piece.count, outAt + e.length);
      outAt += e.length;
      return piece;
    });
    await readCompressedGrains(this.store, this.geom.markers, g, grains, into);
  }

  /** Reserves `bytes` (sector multiple) at the end of the extent file. */
  allocate(bytes: number): number {
    const at = this.next;
    if ((at + bytes) / SECTOR > MAX_EXTENT_SECTORS) {
      throw new UnsupportedError(`VMDK extent '${this.store.name}' is full: grain offsets must stay below 2^32 sectors`, { file: this.store.name });
    }
    this.next = at + bytes;
    return at;
  }

  /** Bytes of one grain table on disk (whole sectors). */
  get tableBytes(): number {
    return Math.ceil((this.geom.gtes * 4) / SECTOR) * SECTOR;
  }
}

