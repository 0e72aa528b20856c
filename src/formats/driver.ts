/**
 * The format-driver interface: the one file every driver imports its types
 * from, so imports keep pointing down (formats → io → core).
 *
 * A driver is a stateless record; an open image is a {@link FormatImage}
 * whose core call is {@link FormatImage.mapping}: drivers describe where
 * guest bytes live and the block layer does the reading, the backing
 * fall-through and the zero-filling.
 */
import type { OptionSpec, OptionValue } from '../core/options.js';
import type { ByteStore } from '../io/byte-store.js';

export type { ByteStore } from '../io/byte-store.js';
export type { OptionSpec, OptionValue } from '../core/options.js';

/** A backing file as an image records it. */
export interface BackingRef {
  /** The name exactly as stored in the image. */
  readonly filename: string;
  /** The recorded format, when the image names one. */
  readonly format?: string | undefined;
}

/** Guest bytes stored verbatim at `hostOffset` of `store`. */
export interface DataExtent {
  /** Discriminant. */
  readonly kind: 'data';
  /** First guest byte. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
  /** The store holding the bytes. */
  readonly store: ByteStore;
  /** Where in the store the first byte is. */
  readonly hostOffset: number;
}

/** Guest bytes that read as zero in this layer (never fall through to backing). */
export interface ZeroExtent {
  /** Discriminant. */
  readonly kind: 'zero';
  /** First guest byte. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
  /** True when host space is reserved for the range (preallocated zero cluster, raw file region). */
  readonly allocated: boolean;
  /** Where the reserved space is, when `allocated`. */
  readonly store?: ByteStore | undefined;
  /** Host offset of the reserved space, when `allocated`. */
  readonly hostOffset?: number | undefined;
}

/** Guest bytes stored compressed; read with {@link FormatImage.readCompressed}. */
export interface CompressedExtent {
  /** Discriminant. */
  readonly kind: 'compressed';
  /** First guest byte. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
  /** Where the compressed unit starts in the image file. */
  readonly hostOffset: number;
  /** Compressed bytes to read (an upper bound). */
  readonly hostLength: number;
  /** Offset of the compressed unit's first guest byte (a cluster start). */
  readonly unitOffset: number;
}

/** Guest bytes this layer does not hold: ask the backing layer (zeros without one). */
export interface UnallocatedExtent {
  /** Discriminant. */
  readonly kind: 'unallocated';
  /** First guest byte. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
}

/** One run of guest address space as a single layer describes it. */
export type Extent = DataExtent | ZeroExtent | CompressedExtent | UnallocatedExtent;

/** Reads guest data from the layers below an image (for copy-on-write). */
export type BackingReader = (offset: number, into: Uint8Array) => Promise<void>;

/** Opens files an image refers to other than its backing file (qcow2 data files, vmdk extents). */
export interface ExternalFiles {
  /**
   * Opens `name` (as recorded in the image) through the block layer's
   * resolver, which applies the trust mode.
   */
  open(name: string, role: ExternalRole, options: { readOnly: boolean; create?: boolean }): Promise<ByteStore>;
}

/** What an external file is for (named in error messages). */
export type ExternalRole = 'data-file' | 'extent';

/** What a driver's `open` receives. */
export interface OpenOptions {
  /** Open without write access; the driver must never write then. */
  readonly readOnly: boolean;
  /** The name the image was opened under (for messages). */
  readonly filename: string;
  /** Resolver for external files. */
  readonly external: ExternalFiles;
}

/** What a driver's `create` receives. */
export interface CreateRequest {
  /** Virtual size in bytes. */
  readonly size: number;
  /** The `-o` options, typed by the driver's specs (defaults not filled in). */
  readonly options: ReadonlyMap<string, OptionValue>;
  /** The name being created (for messages and relative data-file names). */
  readonly filename: string;
  /** Resolver for external files the image will name (data_file). */
  readonly external: ExternalFiles;
}

/** What a driver can do, for capability checks before a job starts. */
export interface DriverCapabilities {
  /** Can create images. */
  readonly create: boolean;
  /** Can write images. */
  readonly write: boolean;
  /** Records backing files. */
  readonly backing: boolean;
  /** Has internal snapshots. */
  readonly snapshots: boolean;
  /** Can write compressed units (`convert -c`). */
  readonly compress: boolean;
  /** Can check consistency. */
  readonly check: boolean;
  /** Can change the virtual size. */
  readonly resize: boolean;
  /** Can change options in place. */
  readonly amend: boolean;
  /** Has persistent dirty bitmaps. */
  readonly bitmaps: boolean;
}

/** A format driver: one per folder in formats/. */
export interface FormatDriver {
  /** Format name as qemu-img spells it (`qcow2`). */
  readonly name: string;
  /** What the format supports. */
  readonly capabilities: Readonly<DriverCapabilities>;
  /** The `-o` options accepted by create, in qemu's list order. */
  readonly createOptions: readonly OptionSpec[];
  /**
   * Scores how sure the driver is that `head` (the first bytes of the file,
   * at most 4 KiB) is its format: 0 = not mine, 100 = magic matched. Pure,
   * never throws.
   */
  probe(head: Uint8Array, filename: string): number;
  /** Opens an image on `store`. Validates every header field before use. */
  open(store: ByteStore, options: OpenOptions): Promise<FormatImage>;
  /** Writes a new empty image of `request.size` onto the (empty, writable) store. */
  create?(store: ByteStore, request: CreateRequest): Promise<void>;
  /**
   * True when creating with these options also makes files named after the
   * image (vmdk extents, qcow2 data files). Such targets are written in
   * place, never under a temporary name.
   */
  createsExtraFiles?(options: ReadonlyMap<string, OptionValue>): boolean;
}

/** Human and JSON `info` facts a driver adds to the generic ones. */
export interface FormatDescription {
  /** `cluster-size` in info, when the format has one. */
  readonly clusterSize?: number | undefined;
  /** `dirty-flag`. */
  readonly dirty: boolean;
  /** `encrypted`, when true. */
  readonly encrypted?: boolean | undefined;
  /** Internal snapshots (qcow2). */
  readonly snapshots?: readonly SnapshotInfo[] | undefined;
  /**
   * The `format-specific` block: `type` and a `data` object whose keys are
   * in QAPI schema order (the printer reorders them as qemu does).
   */
  readonly formatSpecific?: {
    /** The format name (`qcow2`). */
    readonly type: string;
    /** The fields, in QAPI schema order. */
    readonly data: Readonly<Record<string, unknown>>;
  } | undefined;
}

/** One internal snapshot as `info` reports it. */
export interface SnapshotInfo {
  /** Snapshot ID. */
  readonly id: string;
  /** Snapshot name. */
  readonly name: string;
  /** Saved VM state size in bytes. */
  readonly vmStateSize: number;
  /** Creation time, seconds since the epoch. */
  readonly dateSec: number;
  /** Nanoseconds part of the creation time. */
  readonly dateNsec: number;
  /** Guest clock at creation, in nanoseconds. */
  readonly vmClockNsec: number;
  /** Instruction count, when recorded. */
  readonly icount?: number | undefined;
}

/**
 * Writing into one layer. The caller (BlockDevice) guarantees: requests are
 * inside the virtual size, no two overlapping requests run at once, and
 * writes to a read-only image never arrive.
 */
export interface ImageWriter {
  /** Writes guest bytes; allocates and copies-on-write from the backing reader as needed. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes the range read as zeros; with `mayUnmap` the space may be released. */
  writeZeroes(offset: number, length: number, options: { mayUnmap: boolean }): Promise<void>;
  /** Drops the range's data: it then reads from the backing file (or as zeros). */
  discard?(offset: number, length: number): Promise<void>;
  /** Writes one whole unit (cluster) compressed; `offset` is unit-aligned. */
  writeCompressed?(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Copies guest bytes straight from another store (copy offload). Returns
   * false when the format cannot; the caller then reads and writes.
   */
  copyFrom?(offset: number, length: number, source: ByteStore, sourceOffset: number): Promise<boolean>;
}

/** Changing an image's virtual size. */
export interface ImageResizer {
  /** Sets the virtual size; the caller has checked that shrinking was asked for. */
  resize(newSize: number, options: { shrink: boolean; preallocation?: string | undefined }): Promise<void>;
}

/** One open image: one layer of a chain. */
export interface FormatImage {
  /** The driver that opened it. */
  readonly format: string;
  /** The file holding the image's metadata. */
  readonly store: ByteStore;
  /** Guest-visible size in bytes. */
  readonly virtualSize: number;
  /** Allocation unit (cluster, grain, block); mapping extents align to it except at the end. */
  readonly granularity: number;
  /** The backing file recorded in the image. */
  readonly backing: BackingRef | undefined;
  /**
   * Describes `[offset, offset+length)` in this layer only. The result covers
   * a non-empty prefix of the range, in order, without gaps; the caller
   * loops. Caller guarantees `length > 0` and the range is in bounds.
   * `maxExtents` is a hint: the caller uses only that many extents (block
   * status wants one), so the driver may stop once they are complete.
   */
  mapping(offset: number, length: number, maxExtents?: number): Promise<readonly Extent[]>;
  /** Decodes the whole compressed unit holding `extent` into `unit` (granularity bytes). */
  readCompressed?(extent: CompressedExtent, unit: Uint8Array): Promise<void>;
  /**
   * When this resolves true, block status also asks the host store for holes
   * inside data extents (qemu's BDRV_BLOCK_RECURSE: raw files, and qcow2
   * images made with metadata preallocation). Absent means false.
   */
  recurseHostStatus?(): Promise<boolean>;
  /** Gives the image a reader for the layers below (copy-on-write source). */
  attachBacking?(reader: BackingReader | undefined): void;
  /** Present when the image is open for writing and the format can write. */
  readonly writer?: ImageWriter | undefined;
  /** Present when the format can change its size. */
  readonly resizer?: ImageResizer | undefined;
  /** The format-specific part of `info`. */
  describe(): Promise<FormatDescription>;
  /** Writes back cached metadata and flushes the stores. */
  flush(): Promise<void>;
  /** Flushes (when writable) and closes the stores the image owns. */
  close(): Promise<void>;
}
