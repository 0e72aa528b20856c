/**
 * Writing a VHD. Fixed disks are written in place. Dynamic and
 * differencing disks get new blocks at the end of the file, as QEMU
 * allocates them: sector bitmap with every bit set, then the data, the
 * footer moved past the new block, and the BAT entry last, so a crash
 * leaves at worst an unreferenced block, never a BAT entry pointing at
 * garbage. Differencing blocks are filled from the parent first (their
 * bitmaps then say "all sectors here"), so every set bit stays true.
 * The parent reader comes from the image, which checks the parent's unique
 * ID before handing it out (./parent-id.ts).
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { splitAt } from '../../core/split.js';
import type { BackingReader, ImageWriter } from '../driver.js';
import { BAT_UNALLOCATED } from './bat.js';
import { runLength, type BitmapCache } from './bitmap.js';
import type { VpcDynamic, VpcState } from './open.js';

/** Largest buffer one fill step uses (blocks may be large). */
const WINDOW = 1024 * 1024;
const ZEROS = new Uint8Array(WINDOW);

type Fill = 'none' | 'zeros' | 'parent';

/**
 * The ImageWriter of a VHD. Callers serialize requests and split them at
 * block boundaries (BlockDevice does both, from `requestBoundary`).
 */
export class VpcWriter implements ImageWriter {
  /** Dynamic and differencing disks take one block per request; fixed ones any range. */
  readonly requestBoundary: number | undefined;
  readonly #s: VpcState;
  readonly #bitmaps: BitmapCache;
  readonly #backing: () => Promise<BackingReader | undefined>;
  readonly #loadBitmap: (index: number, entry: number) => Promise<Uint8Array>;

  constructor(state: VpcState, bitmaps: BitmapCache, backing: () => Promise<BackingReader | undefined>, loadBitmap: (index: number, entry: number) => Promise<Uint8Array>) {
    this.#s = state;
    this.#bitmaps = bitmaps;
    this.#backing = backing;
    this.#loadBitmap = loadBitmap;
    this.requestBoundary = state.dynamic?.layout.blockSize;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    if (s.kind === 'fixed') {
      if (offset + data.length > s.dataLimit) {
        throw new CorruptImageError(`Fixed VHD '${s.store.name}' holds ${s.dataLimit} bytes of data before its footer, less than its virtual size`, { offset: s.dataLimit });
      }
      await s.store.write(offset, data);
      return;
    }
    const dyn = s.dynamic!;
    const bs = dyn.layout.blockSize;
    const idx = Math.floor(offset / bs);
    const inBlock = offset - idx * bs;
    if (inBlock + data.length > bs) throw new RangeError(`VHD write [${offset}, +${data.length}) crosses a block boundary`);
    const entry = dyn.bat[idx] as number;
    if (entry === BAT_UNALLOCATED) {
      await this.#allocate(dyn, idx, inBlock, data);
    } else {
      if (s.kind === 'differencing') await this.#materialize(dyn, idx, entry);
      await s.store.write(entry * 512 + dyn.layout.bitmapSize + inBlock, data);
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const s = this.#s;
    // An unallocated block of a dynamic disk already reads as zeros (the request lies in one block).
    if (s.kind === 'dynamic' && s.dynamic!.bat[Math.floor(offset / s.dynamic!.layout.blockSize)] === BAT_UNALLOCATED) return;
    for (const p of splitAt(offset, length, WINDOW)) await this.write(p.offset, ZEROS.subarray(0, p.length));
  }

  async #reader(): Promise<BackingReader> {
    const r = await this.#backing();
    if (!r) {
      throw new UnsupportedError(`Writing to differencing VHD '${this.#s.store.name}' needs its parent open (it supplies the sectors the new block does not hold)`);
    }
    return r;
  }

  /** Reads guest bytes of the parent; beyond the virtual size they are zeros. */
  async #readParent(reader: BackingReader, guest: number, into: Uint8Array): Promise<void> {
    const n = Math.max(0, Math.min(into.length, this.#s.virtualSize - guest));
    if (n > 0) await reader(guest, into.subarray(0, n));
    into.fill(0, n);
  }

  async #allocate(dyn: VpcDynamic, idx: number, inBlock: number, chunk: Uint8Array): Promise<void> {
    const s = this.#s;
    const { blockSize, bitmapSize, batOffset } = dyn.layout;
    const start = dyn.freeOffset;
    const entry = start / 512;
    if (entry >= BAT_UNALLOCATED) throw new UnsupportedError(`VHD '${s.store.name}' is full: a block at offset ${start} cannot be addressed by a BAT entry`);
    const fileSize = await s.store.size();
    const fill: Fill = s.kind === 'differencing' ? 'parent' : fileSize > start + bitmapSize ? 'zeros' : 'none';
    await this.#fillBlock(start + bitmapSize, idx * blockSize, inBlock, chunk, fill);
    const bitmap = new Uint8Array(bitmapSize).fill(0xff);
    await s.store.write(start, bitmap);
    await s.store.write(start + bitmapSize + blockSize, s.footerBytes);
    const be = new Uint8Array(4);
    new DataView(be.buffer).setUint32(0, entry);
    await s.store.write(batOffset + idx * 4, be);
    dyn.bat[idx] = entry;
    dyn.freeOffset = start + bitmapSize + blockSize;
    this.#bitmaps.set(idx, bitmap);
  }

  /** Writes a new block's data: `chunk` at `chunkAt`, the rest from `fill`, in bounded windows. */
  async #fillBlock(host: number, guestBase: number, chunkAt: number, chunk: Uint8Array, fill: Fill): Promise<void> {
    const store = this.#s.store;
    if (fill === 'none') {
      await store.write(host + chunkAt, chunk);
      return;
    }
    const reader = fill === 'parent' ? await this.#reader() : undefined;
    const bs = this.#s.dynamic!.layout.blockSize;
    for (let w = 0; w < bs; w += WINDOW) {
      const len = Math.min(WINDOW, bs - w);
      const buf = new Uint8Array(len);
      const cs = Math.max(w, chunkAt);
      const ce = Math.min(w + len, chunkAt + chunk.length);
      const covered = cs === w && ce === w + len;
      if (!covered && reader) await this.#readParent(reader, guestBase + w, buf);
      if (ce > cs) buf.set(chunk.subarray(cs - chunkAt, ce - chunkAt), cs - w);
      await store.write(host + w, buf);
    }
  }

  /** Copies the parent's sectors into the clear-bit parts of an existing block, then sets every bit. */
  async #materialize(dyn: VpcDynamic, idx: number, entry: number): Promise<void> {
    const { blockSize, bitmapSize } = dyn.layout;
    const sectors = blockSize / 512;
    const bitmap = await this.#loadBitmap(idx, entry);
    const first = runLength(bitmap, 0, sectors);
    if (first.set && first.sectors === sectors) return;
    const reader = await this.#reader();
    const host = entry * 512 + bitmapSize;
    for (let sec = 0; sec < sectors; ) {
      const run = runLength(bitmap, sec, sectors - sec);
      if (!run.set) {
        for (let b = sec * 512; b < (sec + run.sectors) * 512; b += WINDOW) {
          const buf = new Uint8Array(Math.min(WINDOW, (sec + run.sectors) * 512 - b));
          await this.#readParent(reader, idx * blockSize + b, buf);
          await this.#s.store.write(host + b, buf);
        }
      }
      sec += run.sectors;
    }
    const full = new Uint8Array(bitmapSize).fill(0xff);
    await this.#s.store.write(entry * 512, full);
    this.#bitmaps.set(idx, full);
  }
}
