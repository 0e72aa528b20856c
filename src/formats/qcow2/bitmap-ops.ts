/**
 * Persistent dirty bitmaps of an open qcow2 image (qcow2-bitmap.c's load
 * and store, the block layer's bitmap operations): the ImageBitmaps
 * capability. Writable opens mark every consistent bitmap in_use at once,
 * as QEMU does; bits are read when first needed (enabled bitmaps before the
 * first write, which they then record in memory), and close writes every
 * bitmap to new clusters, sized to the image as it is then, switches the
 * directory in one header write and frees the old clusters.
 */
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ImageBitmaps, ImageWriter, OpenOptions, PersistentBitmapInfo } from '../driver.js';
import {
  bitmapBytes,
  BME_FLAG_AUTO,
  BME_FLAG_IN_USE,
  BME_MAX_PHYS_SIZE,
  BME_MAX_TABLE_SIZE,
  BT_DIRTY_TRACKING_BITMAP,
  dirEntrySize,
  parseDirEntries,
  type BitmapDirEntry,
} from './bitmap-dir.js';
import { bitmapClusters, loadBits, rewriteDirInPlace, storeBits, switchDirectory } from './bitmap-io.js';
import { punchFreed } from './discard.js';
import { markRange, mergeBits } from './bitmap-bits.js';
import type { BitmapInfo } from './bitmap.js';
import type { Qcow2State } from './state.js';

interface Live {
  name: string;
  granularity: number;
  enabled: boolean;
  /** Inconsistent on disk (in_use when opened): kept as it is, unusable. */
  inconsistent: boolean;
  bits: Uint8Array | undefined;
  /** The virtual size `bits` describes (granules past it are stale and must read clean). */
  bitsSize: number;
  /** The on-disk entry this bitmap came from. */
  entry: BitmapDirEntry | undefined;
}

function inconsistent(name: string): InvalidArgumentError {
  return new InvalidArgumentError(`Bitmap '${name}' is inconsistent and cannot be used`, { hint: 'Try block-dirty-bitmap-remove to delete this bitmap from disk' });
}

/** The default granularity QEMU picks: the cluster size, within 4 KiB..64 KiB. */
function defaultGranularity(clusterSize: number): number {
  return Math.min(65536, Math.max(4096, clusterSize));
}

/** The ImageBitmaps capability of one qcow2 image. */
export class Qcow2Bitmaps implements ImageBitmaps {
  readonly #s: Qcow2State;
  readonly #writable: boolean;
  #live: Live[] | undefined;
  /** On-disk entries removed: their clusters are freed when the new directory is in place. */
  #removed: BitmapDirEntry[] = [];
  #attached = false;
  /** The virtual size the on-disk entries describe (a resize changes the image's, not theirs). */
  #entriesSize = 0;

  /** Where qemu's error reports at close go (a bitmap that no longer fits the image). */
  readonly #onWarning: OpenOptions['onWarning'];

  constructor(s: Qcow2State, writable: boolean, onWarning?: OpenOptions['onWarning']) {
    this.#s = s;
    this.#writable = writable;
    this.#onWarning = onWarning;
  }

  /** qcow2 v3 stores bitmaps; v2 cannot. */
  get supported(): boolean {
    return this.#s.header.version === 3;
  }

  async #load(): Promise<Live[]> {
    if (this.#live) return this.#live;
    const s = this.#s;
    const ext = s.header.bitmaps;
    this.#entriesSize = s.virtualSize;
    let entries: BitmapDirEntry[] = [];
    if (ext) {
      const dir = new Uint8Array(ext.directorySize);
      await s.store.read(ext.directoryOffset, dir);
      entries = parseDirEntries(dir, ext.nbBitmaps, s.virtualSize, s.g.clusterSize);
    }
    this.#live = entries.map((e) => ({
      name: e.name,
      granularity: 2 ** e.granularityBits,
      enabled: (e.flags & BME_FLAG_AUTO) !== 0,
      inconsistent: (e.flags & BME_FLAG_IN_USE) !== 0,
      bits: undefined,
      bitsSize: s.virtualSize,
      entry: e,
    }));
    return this.#live;
  }

  #sync(): BitmapInfo[] {
    return (this.#live ?? []).map((b) => ({ name: b.name, granularity: b.granularity, flags: [...(b.inconsistent ? ['in-use'] : []), ...(b.enabled ? ['auto'] : [])] }));
  }

  list(): readonly PersistentBitmapInfo[] {
    if (!this.#live) {
      return this.#s.bitmaps.map((b) => ({ name: b.name, granularity: b.granularity, enabled: b.flags.includes('auto'), inUse: b.flags.includes('in-use') }));
    }
    return this.#live.map((b) => ({ name: b.name, granularity: b.granularity, enabled: b.enabled && !b.inconsistent, inUse: b.inconsistent }));
  }

  async #find(name: string): Promise<Live> {
    const b = (await this.#load()).find((x) => x.name === name);
    if (!b) throw new InvalidArgumentError(`Dirty bitmap '${name}' not found`);
    return b;
  }

  /** The bits, loaded on first use and kept sized to the current virtual size (a resize grows them clean). */
  async #bits(b: Live): Promise<Uint8Array> {
    if (!b.bits) {
      b.bits = b.entry ? await loadBits(this.#s, b.entry, this.#entriesSize) : new Uint8Array(bitmapBytes(this.#s.virtualSize, b.granularity));
      b.bitsSize = b.entry ? this.#entriesSize : this.#s.virtualSize;
    }
    const size = this.#s.virtualSize;
    if (b.bitsSize !== size) {
      // As hbitmap_truncate: a shrink drops the granules past the new end, a grow adds clean ones;
      // so only granules inside both sizes keep their bits (the bytes may not change length: the
      // last byte's spare bits are cleared too, or a later grow would show them dirty).
      const next = new Uint8Array(bitmapBytes(size, b.granularity));
      next.set(b.bits.subarray(0, next.length));
      clearFrom(next, Math.ceil(Math.min(b.bitsSize, size) / b.granularity));
      b.bits = next;
      b.bitsSize = size;
    }
    return b.bits;
  }

  #usable(b: Live): void {
    if (b.inconsistent) throw inconsistent(b.name);
  }

  #mutable(): void {
    if (!this.#writable) throw new UnsupportedError(`Image '${this.#s.filename}' is not open for writing`);
  }

  async read(name: string): Promise<Uint8Array> {
    return new Uint8Array(await this.#bits(await this.#find(name)));
  }

  /** qcow2_co_can_store_new_dirty_bitmap + check_constraints_on_bitmap, with QEMU's messages. */
  #canStore(name: string, granularity: number): void {
    const s = this.#s;
    const fail = (why: string): never => {
      throw new InvalidArgumentError(`Can't make bitmap '${name}' persistent in '${s.filename}': ${why}`);
    };
    if (s.header.version < 3) fail('Cannot store dirty bitmaps in qcow2 v2 files');
    const bits = Math.log2(granularity);
    if (bits > 31) fail('Granularity exceeds maximum (2147483648 bytes)');
    if (bits < 9) fail('Granularity is under minimum (512 bytes)');
    if (tooLarge(s, granularity)) fail(TOO_LARGE);
    if (Buffer.byteLength(name) > LIMITS.qcow2MaxBitmapNameBytes) fail(`Name length exceeds maximum (${LIMITS.qcow2MaxBitmapNameBytes} characters)`);
    const live = this.#live ?? [];
    if (live.length >= LIMITS.qcow2MaxBitmaps) fail('Maximum number of persistent bitmaps is already reached');
    const dir = live.reduce((n, b) => n + dirEntrySize(Buffer.byteLength(b.name), b.entry?.extraData.length ?? 0), 0);
    if (live.length && dir + dirEntrySize(Buffer.byteLength(name), 0) > LIMITS.qcow2MaxBitmapDirectoryBytes) fail('Not enough space in the bitmap directory');
  }

  async add(name: string, options: { granularity?: number | undefined; enabled?: boolean | undefined }): Promise<void> {
    this.#mutable();
    if (name === '') throw new InvalidArgumentError('Bitmap name cannot be empty');
    const g = options.granularity ?? defaultGranularity(this.#s.g.clusterSize);
    if (g < 512 || (g & (g - 1)) !== 0 || !Number.isSafeInteger(g)) throw new InvalidArgumentError('Granularity must be power of 2 and at least 512');
    const live = await this.#load();
    this.#canStore(name, g);
    if (live.some((b) => b.name === name)) throw new InvalidArgumentError(`Bitmap already exists: ${name}`);
    live.push({ name, granularity: g, enabled: options.enabled ?? true, inconsistent: false, bits: new Uint8Array(bitmapBytes(this.#s.virtualSize, g)), bitsSize: this.#s.virtualSize, entry: undefined });
  }

  async import(info: PersistentBitmapInfo, bits: Uint8Array): Promise<void> {
    await this.add(info.name, { granularity: info.granularity, enabled: info.enabled });
    const b = await this.#find(info.name);
    mergeBits(await this.#bits(b), b.granularity, bits, info.granularity, this.#s.virtualSize);
  }

  async remove(name: string): Promise<void> {
    this.#mutable();
    const b = await this.#find(name);
    const live = await this.#load();
    live.splice(live.indexOf(b), 1);
    if (b.entry) this.#removed.push(b.entry);
  }

  async clear(name: string): Promise<void> {
    this.#mutable();
    const b = await this.#find(name);
    this.#usable(b);
    (await this.#bits(b)).fill(0);
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    this.#mutable();
    const b = await this.#find(name);
    this.#usable(b);
    b.enabled = enabled;
  }

  async merge(name: string, bits: Uint8Array, granularity: number): Promise<void> {
    this.#mutable();
    const b = await this.#find(name);
    this.#usable(b);
    mergeBits(await this.#bits(b), b.granularity, bits, granularity, this.#s.virtualSize);
  }

  /**
   * Called once on a read/write open: marks every consistent bitmap in_use
   * on disk before any write can happen (their bits are read later).
   */
  async attach(): Promise<void> {
    if (this.#attached || !this.#writable) return;
    this.#attached = true;
    const live = await this.#load();
    const fresh = live.filter((b) => !b.inconsistent && b.entry);
    if (!fresh.length) return;
    for (const b of fresh) b.entry!.flags |= BME_FLAG_IN_USE;
    await rewriteDirInPlace(this.#s, live.map((b) => b.entry!));
  }

  /** Reads the bits of every bitmap that records writes and has not read them yet (before a write). */
  async prepareMarks(): Promise<void> {
    for (const b of this.#live ?? []) if (b.enabled && !b.inconsistent && !b.bits) await this.#bits(b);
  }

  /**
   * qcow2_truncate_bitmaps_check: every bitmap must be usable to be
   * resized with the image (they are, at close); an inconsistent one
   * refuses the resize. Reads no bits.
   *
   * @throws {InvalidArgumentError} "Bitmap '…' is inconsistent and cannot be used"
   */
  checkResize(): void {
    const bad = this.#live ? this.#live.find((b) => b.inconsistent)?.name : this.#s.bitmaps.find((b) => b.flags.includes('in-use'))?.name;
    if (bad !== undefined) throw inconsistent(bad);
  }

  /** Records a write of `[offset, offset+length)` in every enabled bitmap. */
  mark(offset: number, length: number): void {
    if (length <= 0 || !this.#live) return;
    for (const b of this.#live) if (b.enabled && !b.inconsistent && b.bits) markRange(b.bits, b.granularity, offset, length);
  }

  /**
   * Writes the bitmaps back (on close of a writable image): new clusters,
   * new directory, header switch, then the old clusters freed. The caller
   * flushed the image's data and metadata first.
   */
  async store(): Promise<void> {
    if (!this.#writable || !this.#live) return;
    // Like QEMU, only a consistent bitmap (or a removal) is worth a new directory: inconsistent ones stay as they are.
    if (!this.#live.some((b) => !b.inconsistent) && !this.#removed.length) return;
    const s = this.#s;
    const rc = s.refcounts;
    if (!rc) return;
    const live = this.#live;
    // qcow2_store_persistent_dirty_bitmaps checks every bitmap it would write (newest first) before it
    // writes any, and writes none when one no longer fits the image's size (a resize): the directory
    // keeps the in_use flags the open set, and qemu-img reports it as it closes the image.
    const misfit = [...live].reverse().find((b) => !b.inconsistent && tooLarge(s, b.granularity));
    if (misfit) {
      this.#onWarning?.({ code: 'error-report', message: `Lost persistent bitmaps during inactivation of node '${s.filename}': Bitmap '${misfit.name}' doesn't satisfy the constraints: ${TOO_LARGE}` });
      return;
    }
    const dropped: BitmapDirEntry[] = [...this.#removed];
    const entries: BitmapDirEntry[] = [];
    for (const b of live) {
      if (b.inconsistent && b.entry) {
        entries.push(b.entry);
        continue;
      }
      if (!b.bits && b.entry && this.#entriesSize === s.virtualSize) {
        // Never read, so unchanged: its clusters stay, only the flags are new (in_use cleared).
        entries.push({ ...b.entry, flags: (b.entry.flags & 4) | (b.enabled ? BME_FLAG_AUTO : 0) });
        continue;
      }
      const { tableOffset, tableSize } = await storeBits(s, rc, await this.#bits(b));
      if (b.entry) dropped.push(b.entry);
      const extraData = b.entry?.extraData ?? new Uint8Array(0);
      const keepFlags = b.entry ? b.entry.flags & 4 : 0;
      entries.push({ tableOffset, tableSize, flags: keepFlags | (b.enabled ? BME_FLAG_AUTO : 0), type: BT_DIRTY_TRACKING_BITMAP, granularityBits: Math.log2(b.granularity), name: b.name, extraData });
    }
    if (!entries.length && !s.header.bitmaps && !dropped.length) return;
    await rc.writeBack();
    await s.store.flush();
    const oldDir = await switchDirectory(s, rc, entries);
    // A dropped bitmap's data clusters go back to the file system: qemu always discards those
    // (free_bitmap_clusters), not its table or the old directory.
    const freed: number[] = [];
    for (const e of dropped) {
      const { data, table } = await bitmapClusters(s, e);
      rc.collectFreed();
      for (const off of data) await rc.free(off, 1);
      freed.push(...rc.takeFreed());
      await rc.free(table.offset, table.clusters);
    }
    if (oldDir) await rc.free(oldDir.offset, oldDir.clusters);
    await rc.writeBack();
    await s.store.flush();
    await punchFreed(s, rc, freed);
    this.#removed = [];
    this.#entriesSize = s.virtualSize;
    this.#live = live.map((b, i) => ({ ...b, entry: entries[i], bits: b.bits }));
    (s as { bitmaps: readonly BitmapInfo[] }).bitmaps = this.#sync();
  }
}

/** Clears every bit from bit `first` on (bit i is byte i >> 3, bit i & 7, as qcow2 stores bitmaps). */
function clearFrom(bits: Uint8Array, first: number): void {
  const byte = Math.floor(first / 8);
  if (byte >= bits.length) return;
  bits[byte]! &= (1 << first % 8) - 1;
  bits.fill(0, byte + 1);
}

const TOO_LARGE = 'Too much space will be occupied by the bitmap. Use larger granularity';

/** check_constraints_on_bitmap's size test: the bits of the image's whole size must fit qcow2's limits. */
function tooLarge(s: Qcow2State, granularity: number): boolean {
  const bytes = bitmapBytes(s.virtualSize, granularity);
  return bytes > BME_MAX_PHYS_SIZE || bytes > BME_MAX_TABLE_SIZE * s.g.clusterSize;
}

/** The writer calls that change guest data, each recorded in the bitmaps first. */
const MARKING = new Set(['write', 'beginWrite', 'writeZeroes', 'discard', 'writeCompressed', 'beginWriteCompressed', 'beginWriteCompressedRun', 'copyFrom']);

/**
 * Wraps a writable image's writer: writes mark the enabled bitmaps; close
 * flushes the data, stores the bitmaps, then closes the writer. Other
 * members pass through unchanged.
 */
export function withBitmaps<W extends ImageWriter & { flush(): Promise<void>; close(): Promise<void> }>(writer: W, bitmaps: Qcow2Bitmaps): W {
  return new Proxy(writer, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (prop === 'close') {
        return async () => {
          await target.flush();
          await bitmaps.store();
          await target.close();
        };
      }
      if (typeof prop === 'string' && MARKING.has(prop)) {
        return async (offset: number, second: unknown, ...rest: unknown[]) => {
          const length = second instanceof Uint8Array ? second.length : typeof second === 'number' ? second : 0;
          await bitmaps.prepareMarks();
          bitmaps.mark(offset, length);
          return fn.call(target, offset, second, ...rest);
        };
      }
      return fn.bind(target);
    },
  });
}
