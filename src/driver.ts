/**
 * `vdisk/driver`: what a format driver's author needs. A driver implements
 * {@link FormatDriver} (probe, open, optionally create) and returns a
 * {@link FormatImage} whose `mapping()` describes the layout as extents;
 * writers, resizers, checkers, snapshots, bitmaps and amend are optional
 * capabilities of the image. Register the driver in a {@link DriverRegistry}
 * and pass that to `open` or a job as `registry`.
 *
 * Everything else (jobs, `open`, stores, errors) is in the main entry,
 * `vdisk`; both entries share one copy of every class and of
 * {@link defaultRegistry}.
 *
 * @module vdisk/driver
 */
export type {
  FormatDriver,
  FormatImage,
  FormatDescription,
  FormatCapabilities,
  Extent,
  DataExtent,
  ZeroExtent,
  CompressedExtent,
  UnallocatedExtent,
  BackingRef,
  BackingReader,
  ImageWriter,
  ImageResizer,
  OpenOptions,
  DataFileOverride,
  OpenWarning,
  UnknownFeatures,
  CreateRequest,
  ExternalFiles,
  ExternalOpenOptions,
  ExternalRole,
  SnapshotInfo,
  NewSnapshotRequest,
  SnapshotOps,
  SnapshotRef,
  CheckCounts,
  CheckRequest,
  CheckRepair,
  ImageChecker,
  MeasureSource,
  MeasureResult,
  PersistentBitmapInfo,
  ImageBitmaps,
  ImageAmender,
  AmendRequest,
  SparseRuns,
  SparseScan,
  ScanUnit,
  StreamPlan,
  StreamWriter,
  StreamWriterRequest,
  ForwardSource,
  ForwardImage,
  ForwardRequest,
  GuestWrite,
  GuestDataWrite,
  GuestZeroWrite,
  SpillSettings,
} from './formats/driver.js';
export { DriverRegistry, defaultRegistry } from './block/registry.js';
export type { CreateProtocol } from './formats/protocol-options.js';
export { LIMITS } from './core/limits.js';
export { ProgressMeter } from './core/progress.js';
export { parseOptionString, formatOptionHelp, type OptionSpec, type OptionType, type OptionValue, type RawOption } from './core/options.js';
export { parseSizeBig, formatSize } from './core/sizes.js';
export { capabilitiesOf } from './formats/driver.js';
/** Names stored in image headers as bytes: `encodeName` gives the bytes of a name `decodeName` made (and UTF-8 for others). */
export { decodeName, encodeName } from './core/byte-names.js';
