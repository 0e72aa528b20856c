/**
 * The optional native module (native/vdisk_native.c, built at install):
 * SEEK_DATA/SEEK_HOLE, fallocate, OFD byte-range locks, copy_file_range,
 * page-aligned buffers for O_DIRECT, reads compared off the main thread.
 * When it is missing every caller falls back to portable code.
 */
import { nativeAddon, nativeStatus, type NativeStatus } from '../core/native-addon.js';

/** The functions the native module provides. */
export interface NativeFileOps {
  /** lseek(SEEK_DATA / SEEK_HOLE); -1 when there is no data at or after `offset`. */
  seek(fd: number, offset: number, hole: boolean): number;
  /** fallocate(2): mode 0 allocates, 1 punches a hole (keeping the size), 2 zeroes the range. */
  fallocate(fd: number, mode: 0 | 1 | 2, offset: number, length: number): Promise<void>;
  /** OFD lock: type 0 unlock, 1 shared, 2 exclusive. Returns 0, or the errno (EAGAIN = held by another). */
  setLock(fd: number, start: number, length: number, type: 0 | 1 | 2): number;
  /** The type of a conflicting lock (1 shared, 2 exclusive) or 0 when the lock could be taken. */
  getLock(fd: number, start: number, length: number, type: 1 | 2): number;
  /** copy_file_range(2) of `length` bytes; resolves to the bytes copied (short at EOF). */
  copyRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number>;
  /**
   * pwrite of all of `buffer` at `offset`, one thread-pool request; a failure rejects with `offset`
   * (where it failed) set. Absent from native modules built before it existed.
   */
  writeAt?(fd: number, buffer: Uint8Array, offset: number): Promise<void>;
  /**
   * pread of `length` bytes at `offIn` into `buffer` (zeros past EOF), split into convert's sparse
   * runs (> 0 data, < 0 zeros; `minBytes` 0: one data run, which with `fdOut` the kernel copies with
   * copy_file_range where the files allow) and, when `fdOut` >= 0, pwrite of the data runs at
   * `offOut`: one thread-pool request. A failure rejects with `write` (which side) and `offset` set.
   * Absent from native modules built before it existed.
   */
  copyScan?(fdIn: number, offIn: number, fdOut: number, offOut: number, buffer: Uint8Array, length: number, guest: number, minBytes: number, alignment: number, unit: number, unitBase: number): Promise<number[]>;
  /**
   * sync_file_range(SYNC_FILE_RANGE_WRITE): starts writing the range's dirty pages without waiting
   * (length 0 = to the end of the file). Absent from native modules built before it existed.
   */
  startWriteback?(fd: number, offset: number, length: number): Promise<void>;
  /**
   * Zeroed memory of `size` bytes (1 B..1 GiB) starting on a 4096-byte boundary, as O_DIRECT needs:
   * an external ArrayBuffer from posix_memalign, freed by its finalizer when collected.
   */
  alignedBuffer(size: number): Uint8Array;
  /** The file's O_DIRECT alignment (statx DIOALIGN, or a block device's logical block size); 0 when unknown. */
  directAlignment(fd: number): number;
  /** A device's size, found by seeking to its end (fstat reports 0); -1 when it cannot seek. Absent from older builds. */
  deviceSize?(fd: number): number;
  /**
   * Reads `length` bytes of each file (zeros past EOF) in pieces the size of the smaller scratch
   * buffer and compares them: the offset of the first 512-byte block that differs, or -1; one
   * thread-pool request. A failed read rejects with `second` (which file) and `offset` set.
   * Absent from older builds.
   */
  compareAt?(fdA: number, offsetA: number, fdB: number, offsetB: number, length: number, scratchA: Uint8Array, scratchB: Uint8Array): Promise<number>;
}

/** The native module, or undefined when it was not built (or VDISK_NO_NATIVE is set). */
export const native = nativeAddon as NativeFileOps | undefined;
export { nativeStatus, type NativeStatus };
