/**
 * An open VHD: mapping of guest ranges (fixed: one data run; dynamic: BAT
 * lookups; differencing: BAT plus sector bitmaps, clear bits falling
 * through to the parent, whose unique ID is checked first: ./parent-id.ts),
 * `info` facts, flush and close.
 */
import { LIMITS } from '../../core/limits.js';
import type {
  BackingReader,
  BackingRef,
  ByteStore,
  Extent,
  ExternalFiles,
  FormatDescription,
  FormatImage,
  ImageWriter,
} from '../driver.js';
import { BAT_UNALLOCATED } from './bat.js';
import { BitmapCache, runLength } from './bitmap.js';
import { PARENT_UNIQUE_ID_AT } from './dynamic-header.js';
import type { VpcState } from './open.js';
import { checkParentUniqueId } from './parent-id.js';
import { VpcWriter } from './write.js';
import { pushExtent } from '../extent-merge.js';

/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 256;

/** One open VHD. */
export class VpcImage implements FormatImage {
  readonly format = 'vpc';
  readonly store: ByteStore;
  readonly virtualSize: number;
  readonly granularity: number;
  readonly backing: BackingRef | undefined;
  readonly writer: ImageWriter | undefined;
  readonly #state: VpcState;
  readonly #bitmaps = new BitmapCache(LIMITS.vpcBitmapCacheBlocks);
  readonly #external: ExternalFiles;
  readonly #filename: string;
  #backingReader: BackingReader | undefined;
  #parentChecked = false;

  constructor(state: VpcState, writable: boolean, external: ExternalFiles, filename: string) {
    this.#state = state;
    this.#external = external;
    this.#filename = filename;
    this.store = state.store;
    this.virtualSize = state.virtualSize;
    this.backing = state.backing;
    this.granularity = state.kind === 'differencing' ? 512 : (state.dynamic?.layout.blockSize ?? 512);
    this.writer = writable ? new VpcWriter(state, this.#bitmaps, () => this.cowReader(), (i, e) => this.bitmap(i, e)) : undefined;
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.#backingReader = reader;
  }

  /** The copy-on-write source, after the parent unique-ID check (undefined without a parent). */
  async cowReader(): Promise<BackingReader | undefined> {
    const r = this.#backingReader;
    if (r) await this.#checkParent();
    return r;
  }

  /** Once per open, before the parent is first read through: its footer must carry the ID the child records. */
  async #checkParent(): Promise<void> {
    const s = this.#state;
    if (this.#parentChecked || !s.backing || !s.dynamic) return;
    await checkParentUniqueId(this.#external, s.backing.filename, s.dynamic.header.parentUniqueId, s.dynamic.headerOffset + PARENT_UNIQUE_ID_AT, this.#filename);
    this.#parentChecked = true;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const s = this.#state;
    if (s.kind === 'fixed') return this.#fixedMapping(offset, length);
    const dyn = s.dynamic!;
    const bs = dyn.layout.blockSize;
    const out: Extent[] = [];
    let pos = offset;
    const end = offset + length;
    // stop once the extents the caller uses are complete (the next one has begun)
    while (pos < end && out.length < MAX_EXTENTS && out.length <= maxExtents) {
      const idx = Math.floor(pos / bs);
      const inBlock = pos - idx * bs;
      const n = Math.min(end - pos, bs - inBlock);
      const entry = idx < dyn.bat.length ? (dyn.bat[idx] as number) : BAT_UNALLOCATED;
      const host = entry * 512 + dyn.layout.bitmapSize;
      // Without a parent, qemu reports unallocated blocks as zeros this layer answers for.
      if (entry === BAT_UNALLOCATED) pushExtent(out, s.kind === 'dynamic' ? { kind: 'zero', offset: pos, length: n, allocated: false } : { kind: 'unallocated', offset: pos, length: n });
      else if (s.kind === 'dynamic') pushExtent(out, { kind: 'data', offset: pos, length: n, store: this.store, hostOffset: host + inBlock });
      else await this.#bitmapRuns(out, idx, entry, pos, inBlock, n);
      pos += n;
    }
    if (this.#backingReader && out.some((x) => x.kind === 'unallocated')) await this.#checkParent();
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  /** The sector bitmap of block `index` (BAT entry `entry`), cached. */
  async bitmap(index: number, entry: number): Promise<Uint8Array> {
    const cached = this.#bitmaps.get(index);
    if (cached) return cached;
    const bitmap = new Uint8Array(this.#state.dynamic!.layout.bitmapSize);
    await this.store.read(entry * 512, bitmap);
    this.#bitmaps.set(index, bitmap);
    return bitmap;
  }

  async #bitmapRuns(out: Extent[], idx: number, entry: number, pos: number, inBlock: number, n: number): Promise<void> {
    const bitmap = await this.bitmap(idx, entry);
    const host = entry * 512 + this.#state.dynamic!.layout.bitmapSize;
    let at = inBlock;
    const stop = inBlock + n;
    while (at < stop) {
      const sector = Math.floor(at / 512);
      const run = runLength(bitmap, sector, Math.ceil(stop / 512) - sector);
      const len = Math.min(stop, (sector + run.sectors) * 512) - at;
      const off = pos + (at - inBlock);
      pushExtent(out, run.set ? { kind: 'data', offset: off, length: len, store: this.store, hostOffset: host + at } : { kind: 'unallocated', offset: off, length: len });
      at += len;
    }
  }

  #fixedMapping(offset: number, length: number): Extent[] {
    const limit = this.#state.dataLimit;
    if (offset >= limit) return [{ kind: 'zero', offset, length, allocated: false }];
    const n = Math.min(length, limit - offset);
    const out: Extent[] = [{ kind: 'data', offset, length: n, store: this.store, hostOffset: offset, recurse: true }];
    if (n < length) out.push({ kind: 'zero', offset: offset + n, length: length - n, allocated: false });
    return out;
  }

  async describe(): Promise<FormatDescription> {
    // qemu reports the block size as cluster size, except for fixed disks.
    return { clusterSize: this.#state.kind === 'fixed' ? undefined : this.#state.dynamic?.layout.blockSize, dirty: false };
  }

  async flush(): Promise<void> {
    if (!this.store.readOnly) await this.store.flush();
  }

  async close(): Promise<void> {
    if (this.writer && !this.store.readOnly) await this.store.flush();
    await this.store.close();
  }
}
