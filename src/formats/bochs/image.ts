/**
 * An open Bochs growing redolog, read-only as in QEMU: a sector reads from
 * its extent when the catalog allocates the extent and the extent's bitmap
 * marks the sector; otherwise it reads as zeros.
 */
import type { ByteStore, Extent, FormatDescription, FormatImage, OpenOptions } from '../driver.js';
import { readHost, refuseWritable } from '../read-only/common.js';
import { type BochsHeader, readBochsHeader } from './header.js';
import { pushExtent } from '../extent-merge.js';

const SECTOR = 512;
const UNALLOCATED = 0xffffffff;
/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 1024;

/** Opens a Bochs image read-only. */
export async function openBochs(store: ByteStore, options: OpenOptions): Promise<BochsImage> {
  refuseWritable(options);
  return new BochsImage(store, await readBochsHeader(store));
}

/** One open Bochs image. */
export class BochsImage implements FormatImage {
  readonly format = 'bochs';
  readonly store: ByteStore;
  readonly virtualSize: number;
  /** qemu's request alignment: allocation is per sector (the bitmap). */
  readonly granularity = SECTOR;
  readonly backing = undefined;
  /** qemu's bochs driver has no block status: everything is allocated data. */
  readonly opaqueStatus = true;
  readonly #h: BochsHeader;

  constructor(store: ByteStore, header: BochsHeader) {
    this.store = store;
    this.#h = header;
    this.virtualSize = header.virtualSize;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const es = this.#h.extentSize;
    const out: Extent[] = [];
    const end = offset + length;
    for (let pos = offset; pos < end && out.length < Math.min(maxExtents, MAX_EXTENTS); ) {
      const extent = Math.floor(pos / es);
      const n = Math.min(end, (extent + 1) * es) - pos;
      await this.#mapExtent(out, extent, pos, n);
      pos += n;
    }
    return out;
  }

  /** Maps `[pos, pos+n)` inside extent `extent`, sector by sector from its bitmap. */
  async #mapExtent(out: Extent[], extent: number, pos: number, n: number): Promise<void> {
    const h = this.#h;
    const slot = h.catalog[extent] as number;
    if (slot === UNALLOCATED) {
      pushExtent(out, { kind: 'zero', offset: pos, length: n, allocated: false });
      return;
    }
    const bitmapAt = h.dataOffset + SECTOR * slot * (h.extentBlocks + h.bitmapBlocks);
    const first = Math.floor((pos % h.extentSize) / SECTOR);
    const last = Math.floor(((pos + n - 1) % h.extentSize) / SECTOR);
    // only the bitmap bytes of the sectors asked for (the bitmap field may claim far more)
    const bits = await readHost(this.store, bitmapAt + (first >> 3), (last >> 3) - (first >> 3) + 1);
    for (let s = first, at = pos; s <= last; s++) {
      const len = Math.min(pos + n, (Math.floor(at / SECTOR) + 1) * SECTOR) - at;
      const set = ((bits[(s >> 3) - (first >> 3)] as number) >> (s & 7)) & 1;
      const host = bitmapAt + SECTOR * (h.bitmapBlocks + s) + (at % SECTOR);
      if (set && Number.isSafeInteger(host)) pushExtent(out, { kind: 'data', offset: at, length: len, store: this.store, hostOffset: host });
      else pushExtent(out, { kind: 'zero', offset: at, length: len, allocated: false });
      at += len;
    }
  }

  async describe(): Promise<FormatDescription> {
    return {};
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    await this.store.close();
  }
}
