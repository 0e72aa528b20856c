import type { ByteStore } from '../formats/driver.js';

/** The status of one run of guest address space across the whole chain. */
export interface BlockStatus {
  /** First guest byte of the run. */
  readonly offset: number;
  /** Length of the run (at least one byte). */
  readonly length: number;
  /** Reads as zeros. */
  readonly zero: boolean;
  /** Stored as data somewhere (false for zero and unallocated runs). */
  readonly data: boolean;
  /** Some layer of the chain allocates it (qemu's `present`). */
  readonly present: boolean;
  /** Stored compressed. */
  readonly compressed: boolean;
  /** Index of the layer that answered (0 = top); the bottom layer's index when nobody allocates it. */
  readonly depth: number;
  /** Where the bytes are, when they sit uncompressed in a file. */
  readonly store?: ByteStore | undefined;
  /** Offset of the first byte in `store`. */
  readonly hostOffset?: number | undefined;
}
