/**
 * vdisk: create, inspect and convert virtual disk images from Node, with
 * qemu-img's behaviour as the contract.
 *
 * This entry holds what a user calls: the jobs, `open` and
 * {@link BlockDevice}, the stores, the errors and {@link Job}. What a format
 * driver's author needs (`FormatDriver`, `FormatImage`, the registry, option
 * parsing) is in `vdisk/driver`.
 *
 * @module vdisk
 */
export {
  VdiskError,
  InvalidArgumentError,
  NotFoundError,
  UnknownFormatError,
  CorruptImageError,
  UnsupportedError,
  LockedError,
  AbortError,
  IoError,
  PermissionError,
  UnsafeReferenceError,
  PolicyError,
  BackingLoopError,
  ChainDepthError,
  type ErrorCode,
  type ErrorFault,
  type ErrorDetails,
  type ErrorReason,
  type ErrorStage,
} from './core/errors.js';
export { Job, type JobState, type JobEvents, type JobOptions, type JobContext, type VdiskWarning } from './core/job.js';
export type { ProgressMeter, JobProgress, ProgressMeterOptions } from './core/progress.js';
export type { ConvertPhase } from './jobs/convert.js';
export type { CommitPhase } from './jobs/commit.js';
export type { RebasePhase } from './jobs/rebase.js';
export type { AmendPhase } from './jobs/amend.js';
export type { ComparePhase } from './jobs/compare.js';
export type { CheckPhase } from './jobs/check.js';
export type { MeasurePhase } from './jobs/measure.js';
export type { DdPhase } from './jobs/dd.js';
export type { BenchPhase } from './jobs/bench.js';
export type { CreatePhase } from './jobs/create.js';
export type { ResizePhase } from './jobs/resize.js';
export type { SnapshotPhase } from './jobs/snapshot.js';
export type { BitmapPhase } from './jobs/bitmap.js';
export type { InfoPhase } from './jobs/info.js';
export { parseSize, type SizeParseResult, type SizeParseFailure } from './core/sizes.js';
export type { OptionSpec, OptionType, OptionValue } from './core/options.js';
/** File names as bytes: pass `decodeName(buffer)` wherever a name is taken to name a file that is not UTF-8. */
export { decodeName } from './core/byte-names.js';
export type { ByteStore, StoreIdentity, HostExtent, LockRequest, LockingMode, ScanUnit, SparseRuns, SparseScan } from './io/byte-store.js';
export { FileStore, type FileStoreOptions, type OpenedFileCheck } from './io/file-store.js';
export type { Wrapper } from './io/unwrap.js';
export type { OutputTarget } from './block/target.js';
export type { ProtocolCreate } from './block/network-target.js';
export type { CacheMode } from './core/cache-mode.js';
export type { Secrets, SecretOptions } from './core/secrets.js';
export { MemoryStore } from './io/memory-store.js';
export { capabilities, type Capabilities } from './io/capabilities.js';
export type { NativeStatus } from './io/native.js';
export type { SnapshotInfo } from './formats/driver.js';
export { BlockDevice } from './block/device.js';
export type { BlockStatus } from './block/block-status.js';
export type { Layer } from './block/layer.js';
export type { ImageTarget, OpenImageOptions } from './block/chain.js';
export { parseImageOptsString, type ImageOptions } from './core/image-options.js';
export type { QDict, QDictValue } from './core/qdict.js';
export type { QNumber } from './core/qemu-json.js';
export type { TrustMode, ResolverOptions, ReferenceRole } from './block/resolver.js';
export { open } from './block/open.js';
export type { NetworkOptions, NetworkRequest } from './io/network-options.js';
export { create, type CreateOptions, type CreateResult, type CreateOptionInput } from './jobs/create.js';
export type { OutputSpec } from './block/target.js';
export { inspect, type InspectOptions, type InspectResult, type InspectReason, type InspectReasonCode } from './jobs/inspect.js';
export type { FoundReference, FormatMatch } from './block/inspect-open.js';
export type { IngestPolicy } from './block/ingest-policy.js';
export type { WrapperInfo } from './block/unwrap.js';
export type { ContentSignature } from './formats/signatures.js';
export type { OpenWarning, UnknownFeatures } from './formats/driver.js';
export { info, type ImageInfo, type ImageSnapshotInfo, type InfoOptions } from './jobs/info.js';
export { convert, type ConvertOptions, type ConvertResult, type Source } from './jobs/convert.js';
export type { DigestAlgorithm } from './jobs/content-digest.js';
export type {
  FormatSpecificInfo,
  Qcow2SpecificInfo,
  VmdkSpecificInfo,
  LuksSpecificInfo,
  Qcow2InfoData,
  Qcow2EncryptInfo,
  Qcow2AesInfo,
  Qcow2LuksInfo,
  Qcow2BitmapInfo,
  VmdkInfoData,
  VmdkExtentInfo,
  LuksInfoData,
  LuksSlotInfo,
} from './jobs/info-format-specific.js';
export { toQemuJson, type QemuJsonObject, type QemuJsonValue, type QemuJsonResult } from './jobs/qemu-output.js';
export { map, type MapEntry, type MapOptions } from './jobs/map.js';
export { commit, type CommitOptions, type CommitResult } from './jobs/commit.js';
export { rebase, type RebaseOptions, type RebaseResult } from './jobs/rebase.js';
export { amend, type AmendOptions, type AmendResult } from './jobs/amend.js';
export { compare, type CompareOptions, type CompareResult, type CompareDifference } from './jobs/compare.js';
export { check, type CheckOptions, type CheckReport, type CheckRepair } from './jobs/check.js';
export { snapshot, type SnapshotAction, type SnapshotOptions, type SnapshotResult } from './jobs/snapshot.js';
export { resize, type ResizeOptions, type ResizePreallocation, type ResizeResult } from './jobs/resize.js';
export type { SnapshotSelector } from './block/snapshot-layer.js';
export type { CheckCounts } from './formats/driver.js';
export { measure, type MeasureOptions } from './jobs/measure.js';
export { dd, type DdOptions, type DdResult } from './jobs/dd.js';
export { bench, type BenchOptions, type BenchResult } from './jobs/bench.js';
export { bitmap, type BitmapAction, type BitmapOptions } from './jobs/bitmap.js';
export type { MeasureSource, MeasureResult, PersistentBitmapInfo } from './formats/driver.js';
