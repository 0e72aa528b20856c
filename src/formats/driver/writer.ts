/**
 * Writing into one layer: the hooks BlockDevice calls under its lock.
 */
import type { ByteStore, SparseRuns, SparseScan } from '../../io/byte-store.js';
import type { BackingRef } from './extent.js';

/**
 * Writing into one layer. The caller (BlockDevice) guarantees: requests are
 * inside the virtual size, no two overlapping requests run at once, and
 * writes to a read-only image never arrive.
 */
export interface ImageWriter {
  /**
   * True when writes and zero writes to different ranges may run at the same
   * time (no metadata to keep consistent, e.g. raw): the device then does not
   * serialize them.
   */
  readonly concurrentWrites?: boolean;
  /**
   * Requests never cross a multiple of this many bytes: the device splits
   * `write`, `writeZeroes` and `discard` there (qemu's block layer splits at
   * a driver's limits the same way), so the writer handles one allocation
   * unit (a vpc or vdi block) per call. Absent: requests arrive whole.
   */
  readonly requestBoundary?: number | undefined;
  /**
   * True when guest write order does not shape the file's layout (every
   * guest byte has a fixed place, e.g. raw): copy loops may then write in
   * any order. Allocating formats place clusters in write order.
   */
  readonly fixedLayout?: boolean;
  /**
   * True when a new image does not read as zeros (luks: an unwritten
   * payload decrypts to noise; qemu's has_zero_init is false): convert
   * then writes zero runs instead of skipping them.
   */
  readonly noZeroInit?: boolean;
  /** Writes guest bytes; allocates and copies-on-write from the backing reader as needed. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * A write in two steps: the returned promise settles once the metadata
   * work (allocation, table updates) is done, leaving a function that waits
   * for the data still being written. The device serializes only the first
   * step, so consecutive writes allocate in order while their data goes to
   * the file concurrently. `data` must stay unchanged until the wait ends.
   */
  beginWrite?(offset: number, data: Uint8Array): Promise<() => Promise<void>>;
  /** Makes the range read as zeros; with `mayUnmap` the space may be released. */
  writeZeroes(offset: number, length: number, options: { mayUnmap: boolean }): Promise<void>;
  /** Drops the range's data: it then reads from the backing file (or as zeros). */
  discard?(offset: number, length: number): Promise<void>;
  /**
   * Writes one whole unit (cluster) compressed; `offset` is unit-aligned.
   * `compressed` is what {@link ImageWriter.compressUnit} returned for the
   * same data (null: not worth compressing, write it plain); without it the
   * writer compresses itself.
   */
  writeCompressed?(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<void>;
  /**
   * {@link ImageWriter.writeCompressed} in two steps, as
   * {@link ImageWriter.beginWrite}: the promise settles once the unit is
   * placed and mapped, leaving a function that waits for its bytes still
   * being written. `data` must stay unchanged until the wait ends.
   */
  beginWriteCompressed?(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<() => Promise<void>>;
  /**
   * Compresses one unit's data without touching the image, so callers can
   * compress many units in parallel and write them in order. Returns null
   * when the result would not be smaller.
   */
  compressUnit?(data: Uint8Array): Promise<Uint8Array | null>;
  /**
   * Compresses a run of whole units (`data`, unit-aligned) at once, without
   * touching the image, as {@link ImageWriter.compressUnit} does each: the
   * results packed back to back in `out` (at least `data.length` bytes),
   * `sizes[i]` the bytes of unit i there, 0 for a unit written plain and -1
   * for an all-zero unit when `skipZeros` (left for the caller).
   */
  compressUnits?(data: Uint8Array, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<void>;
  /**
   * Writes a run of units {@link ImageWriter.compressUnits} compressed (none
   * of them zero-skipped), in two steps as
   * {@link ImageWriter.beginWriteCompressed}: units placed one after another
   * go to the file as one write. `data` and `packed` must stay unchanged
   * until the wait ends.
   */
  beginWriteCompressedRun?(offset: number, data: Uint8Array, packed: Uint8Array, sizes: Int32Array): Promise<() => Promise<void>>;
  /**
   * Copies guest bytes straight from another store (copy offload). Returns
   * false when the format cannot; the caller then reads and writes.
   */
  copyFrom?(offset: number, length: number, source: ByteStore, sourceOffset: number): Promise<boolean>;
  /**
   * Copies guest bytes from another store with convert's sparse scan, in one
   * request (see {@link ByteStore.copyRuns}); for formats whose guest bytes
   * have a fixed place. Undefined when it cannot (nothing was written).
   */
  copyRuns?(offset: number, source: ByteStore, sourceOffset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns | undefined>;
  /**
   * Writes the data runs of the bytes `buffer` holds with convert's sparse
   * scan, in one request (see {@link ByteStore.writeRuns}); for formats whose
   * guest bytes have a fixed place. Undefined when it cannot (nothing was written).
   */
  writeRuns?(offset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined>;
  // --- backing chains (commit, rebase) ---
  /**
   * Drops every cluster the image holds so that it reads through to its
   * backing file (qemu's make_empty, run by `commit` unless `-d`). Crash-safe:
   * references are dropped before the space is freed (leaks at worst).
   */
  makeEmpty?(): Promise<void>;
  /**
   * Rewrites the backing file name and format recorded in the header (one
   * header write, flushed); undefined makes the image standalone. Nothing
   * is copied: the caller keeps the guest view (`rebase`).
   */
  setBacking?(ref: BackingRef | undefined): Promise<void>;
}
