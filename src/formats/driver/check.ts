/**
 * Consistency check and repair (`qemu-img check`): the request, the
 * counters, and the hook an image offers.
 */

/** How much a consistency check may repair (`qemu-img check -r`). */
export type CheckRepair = 'none' | 'leaks' | 'all';

/** What {@link ImageChecker.check} receives. */
export interface CheckRequest {
  /** What to repair; anything but 'none' needs a read/write open. */
  readonly repair: CheckRepair;
  /** Stops the check between tables. */
  readonly signal?: AbortSignal | undefined;
  /**
   * One detail line per finding, in qemu's wording and order (qemu-img
   * prints them on stderr). `report` marks lines qemu prints through
   * error_report, which the CLI prefixes with the program name.
   */
  log(line: string, kind?: 'report'): void;
  /**
   * Resolves once the lines logged so far have been taken up; a checker that
   * can log without bound awaits it between batches (back-pressure).
   */
  logged?: (() => Promise<void>) | undefined;
  /** Work done so far, in units of the checker's choosing. */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/** The counters of one check run (qemu's BdrvCheckResult). */
export interface CheckCounts {
  /** Internal errors: the check could not complete. */
  readonly checkErrors: number;
  /** Inconsistencies that can harm data. */
  readonly corruptions: number;
  /** Clusters (or blocks) allocated but unused. */
  readonly leaks: number;
  /** Corruptions repaired by this run. */
  readonly corruptionsFixed: number;
  /** Leaks repaired by this run. */
  readonly leaksFixed: number;
  /** End of the used part of the image file, when the format knows it. */
  readonly imageEndOffset?: number | undefined;
  /** Clusters of the virtual disk. */
  readonly totalClusters?: number | undefined;
  /** Clusters the active image allocates. */
  readonly allocatedClusters?: number | undefined;
  /** Allocated clusters not contiguous with the previous one. */
  readonly fragmentedClusters?: number | undefined;
  /** Compressed clusters. */
  readonly compressedClusters?: number | undefined;
}

/**
 * Consistency check and repair of one open image (qemu's bdrv_co_check).
 * Damage is reported as counts, never thrown; a thrown error means the
 * check could not run (I/O failure, abort). The caller guarantees that no
 * other I/O runs on the image meanwhile.
 */
export interface ImageChecker {
  /** True when the format can repair (`-r`); otherwise only repair 'none' is accepted. */
  readonly canRepair: boolean;
  /** Runs one check pass, repairing what `request.repair` allows. */
  check(request: CheckRequest): Promise<CheckCounts>;
}
