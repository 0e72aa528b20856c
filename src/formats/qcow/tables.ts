/**
 * The two-level cluster tables of a qcow image. The L1 table is read a page
 * at a time (QEMU reads it whole, up to 2 GiB, at open; pages keep memory
 * bounded whatever the header says) and L2 tables are kept in a bounded
 * LRU cache. Updates are written through to the file at once, as qcow has
 * no other metadata to order them against.
 */
import { IoError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';

/** L1 entries per page (64 KiB of table). */
const L1_PAGE_ENTRIES = 8192;
/**
 * QEMU's BDRV_MAX_LENGTH (INT64_MAX rounded down to 1 GiB): a request that
 * ends past it fails with EIO before any I/O.
 */
export const BDRV_MAX_LENGTH = 0x7fffffffc0000000n;

/**
 * Where a table or name of `bytes` at file offset `offset` can be read:
 * the offset as a number, or undefined when it lies past 2^53 (beyond any
 * file vdisk can open, so it reads as zeros, as a read past EOF does in
 * QEMU).
 *
 * @throws {IoError} "Input/output error" where QEMU's request check fails
 */
export function hostRange(offset: bigint, bytes: number): number | undefined {
  if (offset > BDRV_MAX_LENGTH || BigInt(bytes) > BDRV_MAX_LENGTH - offset) throw new IoError('Input/output error', { offset: Number(offset) });
  return offset + BigInt(bytes) > BigInt(LIMITS.maxOffset) ? undefined : Number(offset);
}

/** Big-endian u64 at `at` of `view`, as a bigint. */
function u64(view: DataView, at: number): bigint {
  return view.getBigUint64(at);
}

/** One L2 table: its raw bytes, decoded on demand. */
export class L2Table {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Entry `i` as stored. */
  entry(i: number): bigint {
    return u64(this.view, i * 8);
  }

  /** True when entry `i` is zero (unallocated), without a bigint. */
  isZero(i: number): boolean {
    return this.view.getUint32(i * 8) === 0 && this.view.getUint32(i * 8 + 4) === 0;
  }
}

/** The L1 pages and the L2 cache of one open image. */
export class QcowTables {
  /** Entries in the L1 table. */
  readonly l1Size: number;
  /** Entries per L2 table. */
  readonly l2Size: number;
  readonly #store: ByteStore;
  /** L1 offset; undefined when it lies past anything vdisk can read (all zeros). */
  readonly #l1Offset: number | undefined;
  readonly #l1Pages = new Map<number, Promise<Uint8Array>>();
  readonly #l2 = new Map<number, Promise<L2Table>>();
  readonly #maxL1Pages: number;
  readonly #maxL2: number;

  constructor(store: ByteStore, l1Offset: number | undefined, l1Size: number, l2Bits: number) {
    this.#store = store;
    this.#l1Offset = l1Offset;
    this.l1Size = l1Size;
    this.l2Size = 2 ** l2Bits;
    this.#maxL1Pages = Math.max(1, Math.floor(LIMITS.qcowL1CacheBytes / (L1_PAGE_ENTRIES * 8)));
    this.#maxL2 = Math.max(1, Math.floor(LIMITS.qcowL2CacheBytes / (this.l2Size * 8)));
  }

  /** L1 entry `index` (an L2 table offset; 0 = none). */
  async l1(index: number): Promise<bigint> {
    const page = Math.floor(index / L1_PAGE_ENTRIES);
    const bytes = await this.#l1Page(page);
    return u64(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), (index - page * L1_PAGE_ENTRIES) * 8);
  }

  /** Writes L1 entry `index` to the file, then to the cached page. */
  async setL1(index: number, value: number): Promise<void> {
    if (this.#l1Offset === undefined) throw new UnsupportedError('File too large', { offset: index * 8, errno: 27 });
    const be = new Uint8Array(8);
    new DataView(be.buffer).setBigUint64(0, BigInt(value));
    await this.#store.write(this.#l1Offset + index * 8, be);
    const page = Math.floor(index / L1_PAGE_ENTRIES);
    const cached = this.#l1Pages.get(page);
    if (cached) (await cached).set(be, (index - page * L1_PAGE_ENTRIES) * 8);
  }

  /** The L2 table at file offset `offset` (a read past 2^53 gives zeros). */
  l2(offset: bigint): Promise<L2Table> {
    const bytes = this.l2Size * 8;
    const at = hostRange(offset, bytes);
    const key = at ?? -1;
    let p = this.#l2.get(key);
    if (p) {
      this.#l2.delete(key);
    } else {
      const table = new Uint8Array(bytes);
      p = (at === undefined ? Promise.resolve(0) : this.#store.read(at, table)).then(() => new L2Table(table));
      p.catch(() => this.#l2.delete(key));
      if (this.#l2.size >= this.#maxL2) this.#l2.delete(this.#l2.keys().next().value as number);
    }
    this.#l2.set(key, p);
    return p;
  }

  /** Places a new all-zero L2 table at `offset` in the cache (the caller writes it to the file). */
  adoptL2(offset: number, table: L2Table): void {
    if (this.#l2.size >= this.#maxL2) this.#l2.delete(this.#l2.keys().next().value as number);
    this.#l2.set(offset, Promise.resolve(table));
  }

  /** Writes entries `[first, first + count)` of `table` (at file offset `offset`) to the file. */
  async writeL2Entries(offset: number, table: L2Table, first: number, count: number): Promise<void> {
    await this.#store.write(offset + first * 8, table.bytes.subarray(first * 8, (first + count) * 8));
  }

  /** Forgets every cached table (after make_empty rewrote the L1 table). */
  clear(): void {
    this.#l1Pages.clear();
    this.#l2.clear();
  }

  #l1Page(page: number): Promise<Uint8Array> {
    let p = this.#l1Pages.get(page);
    if (p) {
      this.#l1Pages.delete(page);
    } else {
      const first = page * L1_PAGE_ENTRIES;
      const bytes = new Uint8Array(Math.min(L1_PAGE_ENTRIES, this.l1Size - first) * 8);
      p = (this.#l1Offset === undefined ? Promise.resolve(0) : this.#store.read(this.#l1Offset + first * 8, bytes)).then(() => bytes);
      p.catch(() => this.#l1Pages.delete(page));
      if (this.#l1Pages.size >= this.#maxL1Pages) this.#l1Pages.delete(this.#l1Pages.keys().next().value as number);
    }
    this.#l1Pages.set(page, p);
    return p;
  }
}
