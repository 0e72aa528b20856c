/**
 * An open Parallels image, as QEMU's parallels driver (qemu-img 7.2) opens,
 * maps, writes and closes it: the BAT read in pages, the end of the data
 * area found from the BAT, clusters allocated at that end (the file grown
 * ahead by `prealloc-size` as QEMU does), `inuse` set while open read/write
 * and the file cut back to the data end on close.
 */
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { BackingReader, ByteStore, Extent, FormatDescription, FormatImage, ImageBitmaps, ImageChecker, ImageWriter, OpenOptions } from '../driver.js';
import { VdiBlockMap } from '../vdi/paged-map.js';
import { parallelsChecker } from './check.js';
import { bitmapInfo, readBitmapBits, readFormatExtension, type PrlBitmap } from './ext.js';
import { parsePrlHeader, PRL_FIELD, PRL_HEADER_SIZE, PRL_INUSE_MAGIC, sectorBytes } from './header.js';
import { preallocOptions, type PrlPrealloc } from './runtime.js';
import { clusterOffset, le32, type PrlState } from './state.js';
import { pushExtent } from '../extent-merge.js';

const SECTOR = 512;

/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 256;
const ZEROS = new Uint8Array(1024 * 1024);

/**
 * The data end as parallels_open computes it: `data_off`, or (when 0) the
 * end of the BAT in bytes (QEMU's unit slip, kept: it decides where clusters
 * go), raised past every cluster the BAT names.
 */
async function findDataEnd(s: Omit<PrlState, 'dataEnd' | 'unclean'>): Promise<number> {
  const h = s.header;
  let end = h.dataOff !== 0 ? h.dataOff : Math.ceil((PRL_HEADER_SIZE + 4 * h.batEntries) / SECTOR) * SECTOR;
  for await (const { entries } of s.bat.chunks(s.batInFile)) {
    for (const e of entries) {
      const sector = e * h.offMultiplier;
      if (sector >= end) end = sector + h.tracks;
    }
  }
  if (sectorBytes(end) === undefined) throw new UnsupportedError('Parallels BAT points beyond 2^53 bytes, more than vdisk supports', { offset: PRL_HEADER_SIZE });
  return end;
}

/**
 * Opens an image on `store`: header checks, the data end, the dirty flag
 * (a read/write open of an image not closed cleanly is refused unless it is
 * for a check), runtime options, and the format extension of a read-only
 * open. A read/write open marks the image in use and drops the format
 * extension (see {@link PrlImage}).
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED, {@link InvalidArgumentError} bad runtime options
 */
export async function openParallels(store: ByteStore, options: OpenOptions): Promise<PrlImage> {
  const head = new Uint8Array(PRL_HEADER_SIZE);
  await store.read(0, head);
  const header = parsePrlHeader(head);
  const clusterSize = header.tracks * SECTOR;
  const fileSize = await store.size();
  const batInFile = Math.min(header.batEntries, Math.max(0, Math.ceil((fileSize - PRL_HEADER_SIZE) / 4)));
  const bat = new VdiBlockMap(store, PRL_HEADER_SIZE, header.batEntries, LIMITS.parallelsBatCacheBytes);
  const base = { store, header, clusterSize, bat, batInFile };
  const state: PrlState = { ...base, dataEnd: await findDataEnd(base), unclean: header.inuse === PRL_INUSE_MAGIC };
  const writable = !options.readOnly;
  if (state.unclean && writable && !options.check) {
    throw new CorruptImageError('parallels: Image was not closed correctly; cannot be opened read/write', { offset: PRL_FIELD.inuse });
  }
  const prealloc = preallocOptions(options.runtime, header.tracks);
  let bitmaps: PrlBitmap[] = [];
  if (header.extOff !== 0) {
    // QEMU ignores the extension when writing (and would leave it stale)
    if (writable) options.onWarning?.({ code: 'warn-report', message: 'Format Extension ignored in RW mode' });
    else bitmaps = await readFormatExtension(store, header.extOff === undefined ? undefined : header.extOff * SECTOR, clusterSize, header.sectors);
  }
  const image = new PrlImage(state, writable, prealloc, bitmaps);
  if (writable) await image.markInUse();
  return image;
}

/**
 * One open Parallels image. Deliberately unlike QEMU 7.2, a read/write open
 * clears `ext_off` along with setting `inuse`: QEMU keeps it while its close
 * cuts the file back to the data end, which drops the extension cluster and
 * leaves an image that no longer opens read-only.
 */
export class PrlImage implements FormatImage {
  readonly format = 'parallels';
  readonly store: ByteStore;
  readonly virtualSize: number;
  readonly granularity: number;
  readonly backing = undefined;
  /** QEMU's parallels driver has no bdrv_reopen_prepare: it cannot be the base of a commit. */
  readonly reopenable = false;
  readonly writer: ImageWriter | undefined;
  readonly checker: ImageChecker;
  readonly bitmaps: ImageBitmaps;
  readonly #s: PrlState;
  readonly #prealloc: PrlPrealloc;
  #backing: BackingReader | undefined;
  #closed = false;

  constructor(state: PrlState, writable: boolean, prealloc: PrlPrealloc, bitmaps: readonly PrlBitmap[]) {
    this.#s = state;
    this.#prealloc = prealloc;
    this.store = state.store;
    this.virtualSize = state.header.sectors * SECTOR;
    this.granularity = state.clusterSize;
    this.writer = writable ? { write: (o, d) => this.#write(o, d), writeZeroes: (o, n) => this.#writeZeroes(o, n) } : undefined;
    this.checker = parallelsChecker(state);
    const find = (name: string): PrlBitmap => {
      const b = bitmaps.find((x) => x.name === name);
      if (!b) throw new InvalidArgumentError(`Dirty bitmap '${name}' not found`);
      return b;
    };
    // QEMU loads them as read-only in-memory bitmaps: readable (bitmap --merge -b), never stored
    this.bitmaps = {
      supported: false,
      list: () => bitmaps.map(bitmapInfo),
      read: (name) => readBitmapBits(state.store, find(name), state.clusterSize, this.virtualSize),
    };
  }

  /** Sets `inuse` (and drops the format extension) before the first write, as parallels_open does. */
  async markInUse(): Promise<void> {
    const h = new Uint8Array(PRL_HEADER_SIZE - PRL_FIELD.inuse);
    await this.store.read(PRL_FIELD.inuse, h);
    const v = new DataView(h.buffer);
    v.setUint32(0, PRL_INUSE_MAGIC, true);
    v.setBigUint64(PRL_FIELD.extOff - PRL_FIELD.inuse, 0n, true);
    await this.store.write(PRL_FIELD.inuse, h);
    await this.store.flush();
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.#backing = reader;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const { bat, header, clusterSize } = this.#s;
    const end = offset + length;
    const out: Extent[] = [];
    // stop once the extents the caller uses are complete (the next one has begun)
    const full = (): boolean => out.length >= MAX_EXTENTS || out.length > maxExtents;
    for (let pos = offset; pos < end && !full(); ) {
      let idx = Math.floor(pos / clusterSize);
      // the virtual size may pass the BAT's end: the rest reads as unallocated, as in QEMU
      if (idx >= header.batEntries) {
        pushExtent(out, { kind: 'unallocated', offset: pos, length: end - pos });
        break;
      }
      const page = await bat.page(idx);
      for (; idx < page.first + page.entries.length && pos < end && !full(); idx++) {
        const inCluster = pos - idx * clusterSize;
        const n = Math.min(end - pos, clusterSize - inCluster);
        const entry = page.entries[idx - page.first] as number;
        if (entry !== 0) pushExtent(out, { kind: 'data', offset: pos, length: n, store: this.store, hostOffset: clusterOffset(header, entry) + inCluster });
        else pushExtent(out, { kind: 'unallocated', offset: pos, length: n });
        pos += n;
      }
    }
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  /** QEMU's parallels driver has no bdrv_get_info: info shows neither a cluster size nor a dirty flag. */
  async describe(): Promise<FormatDescription> {
    return {};
  }

  async flush(): Promise<void> {
    if (this.writer) await this.store.flush();
  }

  /**
   * Clears `inuse` and cuts the file to the data end (growing it when the
   * BAT points past it), as parallels_close does, ignoring a failed cut as
   * it does; the store is closed even when the rest fails.
   */
  async close(): Promise<void> {
    try {
      if (this.writer && !this.#closed) {
        this.#closed = true;
        await this.store.write(PRL_FIELD.inuse, le32(0));
        // parallels_close ignores a failed cut (a BAT entry a check repaired can leave the data end
        // past what the file system allows): the image is consistent either way.
        await this.store.truncate(this.#s.dataEnd * SECTOR).catch(() => undefined);
        await this.store.flush();
      }
    } finally {
      await this.store.close();
    }
  }

  async #write(offset: number, data: Uint8Array): Promise<void> {
    const { header, clusterSize, store } = this.#s;
    for (let pos = 0; pos < data.length; ) {
      const idx = Math.floor((offset + pos) / clusterSize);
      const inCluster = offset + pos - idx * clusterSize;
      const chunk = data.subarray(pos, pos + Math.min(data.length - pos, clusterSize - inCluster));
      // QEMU asserts the write lies inside the BAT; the virtual size may pass it
      if (idx >= header.batEntries) throw new CorruptImageError(`Parallels image '${store.name}' has no BAT entry for guest offset ${offset + pos}`, { offset: PRL_FIELD.batEntries });
      let entry = await this.#s.bat.get(idx);
      if (entry === 0) entry = await this.#allocate(idx);
      await store.write(clusterOffset(header, entry) + inCluster, chunk);
      pos += chunk.length;
    }
  }

  /**
   * A new cluster at the data end (allocate_clusters): the file grown past
   * it by `prealloc-size` when it ends there, the backing file's cluster
   * copied in, then the BAT entry written (after the data, so a crash leaks
   * at worst).
   */
  async #allocate(idx: number): Promise<number> {
    const s = this.#s;
    const { header, store, clusterSize } = s;
    const entry = Math.floor(s.dataEnd / header.offMultiplier);
    if (entry > 0xffffffff) throw new UnsupportedError(`Parallels image '${store.name}' has no room for another cluster in its BAT`, { offset: PRL_HEADER_SIZE + idx * 4 });
    const start = s.dataEnd * SECTOR;
    // QEMU compares with the file's length in whole sectors
    if (start + clusterSize > Math.ceil((await store.size()) / SECTOR) * SECTOR) await this.#grow(start, clusterSize);
    if (this.#backing) {
      const cow = new Uint8Array(clusterSize);
      await this.#backing(idx * clusterSize, cow);
      await store.write(start, cow);
    }
    await store.write(PRL_HEADER_SIZE + idx * 4, le32(entry));
    s.bat.set(idx, entry);
    s.dataEnd += header.tracks;
    return entry;
  }

  /**
   * Grows the file past `start + space` by the preallocation size: the
   * space allocated (falloc, QEMU's zero write: the file's disk usage is
   * QEMU's once close cuts it back) or a sparse truncate. A store that
   * cannot preallocate (memory) grows by `space` only: growing ahead saves
   * it nothing.
   */
  async #grow(start: number, space: number): Promise<void> {
    const store = this.#s.store;
    if (!store.preallocate) return store.truncate(start + space);
    const length = space + this.#prealloc.bytes;
    if (this.#prealloc.mode === 'falloc') await store.preallocate(start, length, 'falloc');
    else await store.truncate(start + length);
  }

  /** QEMU's parallels driver has no zero write: the block layer writes zeros, allocating clusters. */
  async #writeZeroes(offset: number, length: number): Promise<void> {
    for (let pos = offset; pos < offset + length; ) {
      const n = Math.min(offset + length - pos, ZEROS.length);
      await this.#write(pos, ZEROS.subarray(0, n));
      pos += n;
    }
  }
}

