/**
 * An open VHDX image: mapping guest ranges through the BAT (and, for
 * differencing images, the sector bitmaps), `info` facts, flush and close.
 */
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { BackingReader, ByteStore, Extent, FormatDescription, FormatImage, ImageChecker, ImageWriter } from '../driver.js';
import { bitmapIndex, payloadIndex } from './bat.js';
import { PayloadState, SB_PRESENT } from './constants.js';
import type { VhdxState } from './open.js';

/** Most blocks one mapping call describes. */
const MAX_BLOCKS_PER_CALL = 64;

export class VhdxImage implements FormatImage {
  readonly format = 'vhdx';
  readonly state: VhdxState;
  readonly granularity: number;
  writer: ImageWriter | undefined;
  /** `qemu-img check` (set by the driver). */
  checker: ImageChecker | undefined;
  backingReader: BackingReader | undefined;

  constructor(state: VhdxState) {
    this.state = state;
    this.granularity = state.meta.hasParent ? state.meta.logicalSectorSize : state.meta.blockSize;
  }

  get store(): ByteStore {
    return this.state.view;
  }

  get virtualSize(): number {
    return this.state.virtualSize;
  }

  get backing() {
    return this.state.backing;
  }

  /** qemu's vhdx driver has no block status: everything reads as allocated data (differencing images, which qemu cannot open, keep their mapping). */
  get opaqueStatus(): boolean {
    return !this.state.meta.hasParent;
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.backingReader = reader;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const { geometry: g } = this.state;
    const out: Extent[] = [];
    let pos = offset;
    const end = offset + length;
    // stop once the extents the caller uses are complete (the next one has begun)
    for (let n = 0; n < MAX_BLOCKS_PER_CALL && pos < end && out.length <= maxExtents; n++) {
      const block = Math.floor(pos / g.blockSize);
      const blockEnd = Math.min(end, (block + 1) * g.blockSize);
      for (const e of await this.#blockExtents(block, pos, blockEnd - pos)) push(out, e);
      pos = blockEnd;
    }
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  async #blockExtents(block: number, offset: number, length: number): Promise<Extent[]> {
    const { bat, geometry: g, meta, view } = this.state;
    const i = payloadIndex(g, block);
    const state = bat.state(i);
    switch (state) {
      case PayloadState.NotPresent:
      case PayloadState.Undefined:
      case PayloadState.Unmapped:
      case PayloadState.UnmappedV095:
        return [{ kind: 'unallocated', offset, length }];
      case PayloadState.Zero:
        return [{ kind: 'zero', offset, length, allocated: false }];
      case PayloadState.FullyPresent:
        return [{ kind: 'data', offset, length, store: view, hostOffset: bat.offset(i) + (offset - block * g.blockSize) }];
      case PayloadState.PartiallyPresent:
        if (meta.hasParent) return this.#partialExtents(block, i, offset, length);
        break;
    }
    throw new CorruptImageError(`VHDX BAT entry ${i} has state ${state}, invalid for ${meta.hasParent ? 'a differencing' : 'a non-differencing'} image`, { offset: bat.fileOffset + i * 8 });
  }

  /** A PARTIALLY_PRESENT block: one bit per logical sector says whether this image holds it. */
  async #partialExtents(block: number, i: number, offset: number, length: number): Promise<Extent[]> {
    const { bat, geometry: g, view } = this.state;
    const b = bitmapIndex(g, block);
    if (b >= bat.length || bat.state(b) !== SB_PRESENT) {
      throw new CorruptImageError(`VHDX block ${block} is partially present but its sector bitmap (BAT entry ${b}) is not`, { offset: bat.fileOffset + b * 8 });
    }
    const lss = g.logicalSectorSize;
    const blockStart = block * g.blockSize;
    const firstSector = Math.floor((offset - blockStart) / lss);
    // Bound the bitmap read; the caller loops for the rest.
    const maxSectors = LIMITS.vhdxMaxBitmapReadBytes * 8;
    const lastSector = Math.min(Math.ceil((offset + length - blockStart) / lss), firstSector + maxSectors);
    const bit0 = (block % g.chunkRatio) * g.sectorsPerBlock + firstSector;
    const byte0 = Math.floor(bit0 / 8);
    const bits = new Uint8Array(Math.ceil((bit0 + (lastSector - firstSector)) / 8) - byte0);
    await view.read(bat.offset(b) + byte0, bits);
    const out: Extent[] = [];
    const limit = Math.min(offset + length, blockStart + lastSector * lss);
    for (let s = firstSector; s < lastSector; s++) {
      const bit = bit0 - byte0 * 8 + (s - firstSector);
      const present = (((bits[bit >> 3] as number) >> (bit & 7)) & 1) === 1;
      const from = Math.max(offset, blockStart + s * lss);
      const to = Math.min(limit, blockStart + (s + 1) * lss);
      const e: Extent = present
        ? { kind: 'data', offset: from, length: to - from, store: view, hostOffset: bat.offset(i) + (from - blockStart) }
        : { kind: 'unallocated', offset: from, length: to - from };
      push(out, e);
    }
    return out;
  }

  async describe(): Promise<FormatDescription> {
    return { clusterSize: this.state.meta.blockSize, dirty: false };
  }

  async flush(): Promise<void> {
    if (!this.state.readOnly) await this.state.store.flush();
  }

  async close(): Promise<void> {
    if (!this.state.readOnly) await this.state.store.flush();
    await this.state.view.close();
  }
}

/** Appends `e`, merging it into the previous extent when they continue each other. */
function push(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  if (last && last.kind === e.kind && last.offset + last.length === e.offset) {
    if (last.kind === 'data' && e.kind === 'data') {
      if (last.hostOffset + last.length === e.hostOffset && last.store === e.store) {
        out[out.length - 1] = { ...last, length: last.length + e.length };
        return;
      }
    } else if (last.kind !== 'data' && last.kind !== 'compressed') {
      out[out.length - 1] = { ...last, length: last.length + e.length };
      return;
    }
  }
  out.push(e);
}
