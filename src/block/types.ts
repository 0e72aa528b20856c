/**
 * The driver-level types jobs and the CLI need, re-exported by the block
 * layer so imports keep pointing down one layer at a time
 * (cli → jobs → block → formats → io).
 */
export type {
  ByteStore,
  CheckCounts,
  CheckRepair,
  ExternalFiles,
  FormatDescription,
  FormatDriver,
  ImageBitmaps,
  MeasureResult,
  MeasureSource,
  SnapshotInfo,
  SparseRuns,
  SparseScan,
  ScanUnit,
  UnknownFeatures,
  StreamPlan,
  StreamWriter,
  ForwardImage,
  ForwardSource,
  GuestWrite,
  SpillSettings,
} from '../formats/driver.js';
export type { ContentSignature } from '../formats/signatures.js';
export { parseCacheMode, type CacheMode } from '../core/cache-mode.js';
