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
  /** Index of the layer that answered (0 = top); when nobody allocates the run, the bottom layer or the one above a shorter backing file. */
  readonly depth: number;
  /**
   * Where the bytes are, when they sit uncompressed in a file; for zero and
   * unallocated runs, host space the answering layer reserved for them
   * (qemu's BDRV_BLOCK_OFFSET_VALID: never read it as data).
   */
  readonly store?: ByteStore | undefined;
  /** Offset of the first byte in `store`. */
  readonly hostOffset?: number | undefined;
  /**
   * The run lies past the end of a shorter backing file (and nothing above
   * allocates it). `depth` is the layer above that file, and `store` its
   * reserved space, as `qemu-img map` reports them; whole-chain queries
   * (compare) see the run as allocated zeros without a host offset.
   */
  readonly pastBackingEnd?: boolean | undefined;
}

/**
 * Where a run's bytes sit uncompressed in a file, when they do (data with a
 * host offset, not compressed): what native paths read directly.
 */
export function plainHost(st: BlockStatus): { store: ByteStore; offset: number } | undefined {
  return st.data && !st.compressed && st.store && st.hostOffset !== undefined ? { store: st.store, offset: st.hostOffset } : undefined;
}
