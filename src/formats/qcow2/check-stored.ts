/**
 * The refcounts an image stores, read for a check without trusting them:
 * reftable entries are kept raw (reserved bits, unaligned or far offsets
 * are the check's findings, not open errors), refcount blocks are read
 * through a small cache and changed in place by repairs.
 */
import { IoError } from '../../core/errors.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { Geometry } from './layout.js';

/** Refcount table entry bits 0..8 are reserved. */
const REFT_RESERVED_LO = 0x1ff;
/**
 * qemu's BDRV_MAX_LENGTH (INT64_MAX aligned down to 1 GiB): a read ending
 * past it fails with EIO instead of reading zeros past the end of the file.
 */
export const BDRV_MAX_LENGTH = 2 ** 63 - 2 ** 30;
/** Refblocks cached at once during a check. */
const MAX_CACHED_BLOCKS = 256;

/** One reftable entry, decoded. */
export interface ReftableEntry {
  /** Offset bits (9..63) as a number (exact up to 2^53; larger values only compare as "outside the image"). */
  readonly offset: number;
  /** Reserved bits set. */
  readonly reserved: boolean;
}

/** Reads refcount entry `i` of a refblock through `view`. */
export function readRefcount(view: DataView, i: number, bits: number): number {
  switch (bits) {
    case 16:
      return view.getUint16(i * 2);
    case 8:
      return view.getUint8(i);
    case 32:
      return view.getUint32(i * 4);
    case 64:
      return view.getUint32(i * 8) * 0x100000000 + view.getUint32(i * 8 + 4);
    default: {
      const bit = i * bits;
      return (view.getUint8(bit >>> 3) >>> (bit & 7)) & ((1 << bits) - 1);
    }
  }
}

/** Writes refcount entry `i` of a refblock through `view`. */
export function writeRefcount(view: DataView, i: number, bits: number, v: number): void {
  switch (bits) {
    case 16:
      return view.setUint16(i * 2, v);
    case 8:
      return view.setUint8(i, v);
    case 32:
      return view.setUint32(i * 4, v);
    case 64:
      view.setUint32(i * 8, Math.floor(v / 0x100000000));
      return view.setUint32(i * 8 + 4, v >>> 0);
    default: {
      const bit = i * bits;
      const mask = ((1 << bits) - 1) << (bit & 7);
      const old = view.getUint8(bit >>> 3);
      view.setUint8(bit >>> 3, (old & ~mask) | ((v << (bit & 7)) & mask));
    }
  }
}

/** Parses raw reftable bytes. */
function parseReftableRaw(bytes: Uint8Array): ReftableEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ReftableEntry[] = [];
  for (let i = 0; i < bytes.length / 8; i++) {
    const hi = view.getUint32(i * 8);
    const lo = view.getUint32(i * 8 + 4);
    out.push({ offset: hi * 0x100000000 + ((lo & ~REFT_RESERVED_LO) >>> 0), reserved: (lo & REFT_RESERVED_LO) !== 0 });
  }
  return out;
}

/** The stored refcounts of an image, as a check reads and repairs them. */
export class StoredRefcounts {
  readonly #store: ByteStore;
  readonly #g: Geometry;
  readonly table: readonly ReftableEntry[];
  readonly #blocks = new Map<number, { data: Uint8Array; view: DataView; dirty: boolean }>();

  constructor(store: ByteStore, g: Geometry, table: readonly ReftableEntry[]) {
    this.#store = store;
    this.#g = g;
    this.table = table;
  }

  /** Reads the reftable the header names. */
  static async load(store: ByteStore, g: Geometry, offset: number, clusters: number): Promise<StoredRefcounts> {
    const raw = new Uint8Array(clusters * g.clusterSize);
    await store.read(offset, raw);
    return new StoredRefcounts(store, g, parseReftableRaw(raw));
  }

  /**
   * The refblock covering `blockIndex` (undefined: none, all counts 0).
   *
   * @throws {IoError} when the reftable entry is unusable (qemu: -EIO)
   */
  async block(blockIndex: number): Promise<DataView | undefined> {
    const e = this.table[blockIndex];
    if (!e || e.offset === 0) return undefined;
    if (!this.#readable(e.offset)) throw new IoError('Input/output error', { data: { refblock: blockIndex } });
    const hit = this.#blocks.get(e.offset);
    if (hit) return hit.view;
    if (this.#blocks.size >= MAX_CACHED_BLOCKS) await this.#evict();
    const data = new Uint8Array(this.#g.clusterSize);
    if (e.offset <= Number.MAX_SAFE_INTEGER) await this.#store.read(e.offset, data);
    const view = new DataView(data.buffer);
    this.#blocks.set(e.offset, { data, view, dirty: false });
    return view;
  }

  /**
   * Stored refcount of `cluster` when it needs no read (its refblock is
   * cached, or there is none); undefined otherwise.
   */
  peek(cluster: number): number | undefined {
    const E = this.#g.refcountBlockEntries;
    const bi = Math.floor(cluster / E);
    const e = this.table[bi];
    if (!e || e.offset === 0) return 0;
    const hit = this.#blocks.get(e.offset);
    return hit ? readRefcount(hit.view, cluster % E, this.#g.refcountBits) : undefined;
  }

  /** False when {@link get} of `cluster` is bound to fail (its reftable entry is unusable). */
  usable(cluster: number): boolean {
    const e = this.table[Math.floor(cluster / this.#g.refcountBlockEntries)];
    return !e || e.offset === 0 || this.#readable(e.offset);
  }

  /** A refblock at `offset` can be read (aligned, and not past what qemu's block layer addresses). */
  #readable(offset: number): boolean {
    return offset % this.#g.clusterSize === 0 && offset + this.#g.clusterSize <= BDRV_MAX_LENGTH;
  }

  /** Stored refcount of host cluster `cluster`. */
  async get(cluster: number): Promise<number> {
    const E = this.#g.refcountBlockEntries;
    const view = await this.block(Math.floor(cluster / E));
    return view ? readRefcount(view, cluster % E, this.#g.refcountBits) : 0;
  }

  /** Sets the stored refcount of `cluster` (its refblock must exist); written back by {@link flush}. */
  async set(cluster: number, value: number): Promise<void> {
    const E = this.#g.refcountBlockEntries;
    const bi = Math.floor(cluster / E);
    const view = await this.block(bi);
    if (!view) throw new IoError('Input/output error', { data: { cluster } });
    writeRefcount(view, cluster % E, this.#g.refcountBits, value);
    this.#blocks.get(this.table[bi]!.offset)!.dirty = true;
  }

  /** Writes changed refblocks back and flushes the store. */
  async flush(): Promise<void> {
    let any = false;
    for (const [off, b] of [...this.#blocks.entries()].sort((x, y) => x[0] - y[0])) {
      if (!b.dirty) continue;
      await this.#store.write(off, b.data);
      b.dirty = false;
      any = true;
    }
    if (any) await this.#store.flush();
  }

  async #evict(): Promise<void> {
    for (const [off, b] of this.#blocks) {
      if (!b.dirty) {
        this.#blocks.delete(off);
        return;
      }
    }
    await this.flush();
    this.#blocks.clear();
  }
}
