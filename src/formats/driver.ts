/**
 * The format-driver interface: the one module every driver imports its
 * types from, so imports keep pointing down (formats → io → core). The
 * contracts live in driver/, one file per concern, as QEMU splits
 * block_int-common.h's hooks by what they serve.
 *
 * A driver is a stateless record; an open image is a {@link FormatImage}
 * whose core call is {@link FormatImage.mapping}: drivers describe where
 * guest bytes live and the block layer does the reading, the backing
 * fall-through and the zero-filling.
 */
export type { ByteStore, ScanUnit, SparseRuns, SparseScan } from '../io/byte-store.js';
export type { OptionSpec, OptionValue } from '../core/options.js';
export type { BackingRef, BackingReader, CompressedExtent, DataExtent, Extent, UnallocatedExtent, ZeroExtent } from './driver/extent.js';
export type { CreateRequest, DataFileOverride, ExternalFiles, ExternalOpenOptions, ExternalRole, OpenOptions, OpenWarning } from './driver/open.js';
export type { FormatDriver } from './driver/format.js';
export type { FormatDescription, FormatImage, ImageResizer, UnknownFeatures } from './driver/image.js';
export type { ImageWriter } from './driver/writer.js';
export type { CheckCounts, CheckRepair, CheckRequest, ImageChecker } from './driver/check.js';
export type { MeasureResult, MeasureSource } from './driver/measure.js';
export type { ImageBitmaps, PersistentBitmapInfo } from './driver/bitmaps.js';
export type { ForwardImage, ForwardRequest, ForwardSource, GuestWrite, GuestDataWrite, GuestZeroWrite, SpillSettings, StreamPlan, StreamWriter, StreamWriterRequest } from './driver/stream.js';
export type { AmendRequest, ImageAmender } from './driver/amend.js';
export type { NewSnapshotRequest, SnapshotInfo, SnapshotOps, SnapshotRef } from './driver/snapshots.js';
export { capabilitiesOf, type FormatCapabilities } from './driver/capabilities.js';
