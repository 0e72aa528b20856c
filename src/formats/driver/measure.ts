/**
 * Size estimates for new images (`qemu-img measure`).
 */
import type { PersistentBitmapInfo } from './bitmaps.js';

/** What `measure` learned about its source image (computed by the job from block status). */
export interface MeasureSource {
  /** The source's virtual size. */
  readonly virtualSize: number;
  /**
   * Bytes of the clusters of `clusterSize` that hold source data, walking
   * the whole chain's block status (zero and unallocated ranges skipped),
   * as qemu's measure counts them.
   */
  allocatedBytes(clusterSize: number): Promise<number>;
  /** Persistent bitmaps of the top layer; undefined when its format cannot store any. */
  readonly bitmaps: readonly PersistentBitmapInfo[] | undefined;
}

/** The estimate `measure` returns (qemu's BlockMeasureInfo). */
export interface MeasureResult {
  /** Bytes the new image needs for the source's data (`required`). */
  readonly required: number;
  /** Bytes when every cluster is allocated (`fully-allocated`). */
  readonly fullyAllocated: number;
  /** Bytes the persistent bitmaps need (`bitmaps`), when the target stores them. */
  readonly bitmaps?: number | undefined;
  /** Exact bytes of the image streamed from the source (`exact-size`), when `exact` asked for it. */
  readonly exactSize?: number | undefined;
}
