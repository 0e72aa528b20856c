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
import type { Secrets } from '../core/secrets.js';
import type { ByteStore, SparseRuns, SparseScan } from '../io/byte-store.js';

export type { ByteStore, SparseRuns, SparseScan } from '../io/byte-store.js';
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
  /**
   * Block status also asks the store for holes inside the range, which then
   * report as zeros (qemu's BDRV_BLOCK_RECURSE: flat vmdk extents, static
   * vdi, fixed vpc — data laid out 1:1 in a file that may be sparse).
   */
  readonly recurse?: boolean | undefined;
  /**
   * The store transforms the bytes (an encrypted image's plaintext view):
   * block status then reports no host offset, as qemu does for encrypted
   * images.
   */
  readonly opaque?: boolean | undefined;
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
  /**
   * Where host space is reserved for the range although this layer holds no
   * data there (qcow2 extended L2: unwritten subclusters of an allocated
   * cluster). Never read; block status reports it as qemu does.
   */
  readonly store?: ByteStore | undefined;
  /** Host offset of the reserved space, with `store`. */
  readonly hostOffset?: number | undefined;
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
  open(name: string, role: ExternalRole, options: ExternalOpenOptions): Promise<ByteStore>;
  /**
   * Told every file the image names before any is opened (vmdk's extent
   * lines and parent hint), so an inspection that opens none of them still
   * learns them all. Optional: opening does not need it.
   */
  declare?(name: string, role: ExternalRole | 'backing-file'): void;
}

/** How an external file is opened. */
export interface ExternalOpenOptions {
  /** Open without write access. */
  readonly readOnly: boolean;
  /** Create the file (emptying an existing one once it is locked). */
  readonly create?: boolean | undefined;
  /**
   * The file holds image metadata (a sparse vmdk extent) rather than guest
   * data only (a flat extent, a qcow2 data file): decides what the lock
   * lets others do, as qemu's child roles do. Default false.
   */
  readonly metadata?: boolean | undefined;
  /** A short look at another image (a parent's ID) that takes no locks. */
  readonly unlocked?: boolean | undefined;
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
  /**
   * Open for a consistency check or repair (qemu's BDRV_O_CHECK): a
   * read/write open then accepts images marked corrupt or dirty and does not
   * repair them at open; the image's {@link ImageChecker} does the writing.
   */
  readonly check?: boolean | undefined;
  /**
   * Receives what the open reports without failing (qemu prints these on
   * stderr): `bitmaps-inconsistent` (persistent bitmaps a program without
   * bitmap support left stale), and the lines of the repair a read/write
   * open of a dirty image runs, `repair-log` (printed as they are) and
   * `repair-report` (lines qemu prefixes with the program name), and
   * `error-report`: what qemu reports before an open fails with a bare
   * errno (a VHDX BAT entry past the end of the file).
   */
  readonly onWarning?: ((warning: OpenWarning) => void) | undefined;
  /**
   * Open options the user gave (`--image-opts`, `json:`) among those the
   * driver declares in {@link FormatDriver.runtimeOptions}, as `[key, text]`
   * in qemu's order; the driver types and checks them (core/options.ts
   * typeQemuOpts) where qemu's driver does.
   */
  readonly runtime?: readonly (readonly [string, string])[] | undefined;
  /**
   * The open only describes the image (`info`; qemu's BDRV_O_NO_IO): the
   * driver reads its metadata but opens no data-carrying file it names
   * (qcow2's data file) and reads no guest data, so an encrypted image
   * opens without its key (and reads fail).
   */
  readonly describeOnly?: boolean | undefined;
  /** Secrets the image's `key-secret` options name (core/secrets.ts lookupSecret). */
  readonly secrets?: Secrets | undefined;
  /**
   * Largest PBKDF2 iteration count an encrypted image's header may ask for
   * (LUKS keyslots, master-key digest); default 2^24. Counts above it are
   * refused before any key is derived.
   */
  readonly maxPbkdf2Iterations?: number | undefined;
}

/** A non-fatal report of an open. */
export interface OpenWarning {
  /** A stable code for programs (`probed-raw`, `autoclear`, `repair`, …). */
  readonly code: string;
  /** qemu-img's text for it. */
  readonly message: string;
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
  /** Secrets the `key-secret` options name (encrypted formats). */
  readonly secrets?: Secrets | undefined;
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
  /**
   * True for a record that only recognises the format by its signature
   * (a registry may list one so that probing refuses such files instead of
   * guessing raw): `open` always fails and nothing can be created,
   * but probing never mistakes such a file for raw.
   */
  readonly recognisedOnly?: boolean | undefined;
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
  /**
   * Open options the driver takes (qemu's runtime_opts): their keys are
   * accepted from `--image-opts`/`json:` and handed to `open`; any other
   * key is refused by the block layer. A name ending in `.` covers every
   * key with that prefix.
   */
  readonly runtimeOptions?: readonly OptionSpec[] | undefined;
  /** Opens an image on `store`. Validates every header field before use. */
  open(store: ByteStore, options: OpenOptions): Promise<FormatImage>;
  /**
   * The option checks qemu's driver makes before the file protocol creates
   * the file (vmdk checks all of its options first); `create` may repeat
   * them. Absent: the protocol's checks come first.
   */
  validateCreate?(size: number, options: ReadonlyMap<string, OptionValue>): void;
  /** Writes a new empty image of `request.size` onto the (empty, writable) store. */
  create?(store: ByteStore, request: CreateRequest): Promise<void>;
  /**
   * True when creating with these options also makes files named after the
   * image (vmdk extents, qcow2 data files). Such targets are written in
   * place, never under a temporary name.
   */
  createsExtraFiles?(options: ReadonlyMap<string, OptionValue>): boolean;
  // --- amend ---
  /** The `-o` options `amend` accepts, in the driver's list order; absent: no amend (`-o help` needs no image). */
  readonly amendOptions?: readonly OptionSpec[] | undefined;
  // --- measure, persistent bitmaps ---
  /**
   * Estimates the file size of a new image (`qemu-img measure`). `size` is
   * the virtual size asked for (ignored when `source` is given), `options`
   * the typed `-o` options. Absent: "Block driver 'x' does not support size
   * measurement".
   */
  measure?(size: number, options: ReadonlyMap<string, OptionValue>, source?: MeasureSource): Promise<MeasureResult>;
}

/** Human and JSON `info` facts a driver adds to the generic ones. */
export interface FormatDescription {
  /** `cluster-size` in info, when the format has one. */
  readonly clusterSize?: number | undefined;
  /** `dirty-flag`; absent for devices qemu reports none for (null-co). */
  readonly dirty?: boolean | undefined;
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
  /**
   * Feature bits the image sets that the driver does not know but may
   * ignore (qcow2's compatible and autoclear bits), as hex masks; unknown
   * incompatible features fail the open instead.
   */
  readonly unknownFeatures?: UnknownFeatures | undefined;
}

/** Unknown feature bits of an image, as hex masks (absent: none). */
export interface UnknownFeatures {
  /** Compatible feature bits vdisk does not know (the image opens; they are ignored). */
  readonly compatible?: string | undefined;
  /** Autoclear feature bits vdisk does not know (a writable open clears them). */
  readonly autoclear?: string | undefined;
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
  /**
   * True when writes and zero writes to different ranges may run at the same
   * time (no metadata to keep consistent, e.g. raw): the device then does not
   * serialize them.
   */
  readonly concurrentWrites?: boolean;
  /**
   * True when guest write order does not shape the file's layout (every
   * guest byte has a fixed place, e.g. raw): copy loops may then write in
   * any order. Allocating formats place clusters in write order.
   */
  readonly fixedLayout?: boolean;
  /**
   * True when a new image does not read as zeros (luks: an unwritten
   * payload decrypts to noise; qemu's has_zero_init is false): convert
   * then writes zero runs instead of skipping them.
   */
  readonly noZeroInit?: boolean;
  /** Writes guest bytes; allocates and copies-on-write from the backing reader as needed. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * A write in two steps: the returned promise settles once the metadata
   * work (allocation, table updates) is done, leaving a function that waits
   * for the data still being written. The device serializes only the first
   * step, so consecutive writes allocate in order while their data goes to
   * the file concurrently. `data` must stay unchanged until the wait ends.
   */
  beginWrite?(offset: number, data: Uint8Array): Promise<() => Promise<void>>;
  /** Makes the range read as zeros; with `mayUnmap` the space may be released. */
  writeZeroes(offset: number, length: number, options: { mayUnmap: boolean }): Promise<void>;
  /** Drops the range's data: it then reads from the backing file (or as zeros). */
  discard?(offset: number, length: number): Promise<void>;
  /**
   * Writes one whole unit (cluster) compressed; `offset` is unit-aligned.
   * `compressed` is what {@link ImageWriter.compressUnit} returned for the
   * same data (null: not worth compressing, write it plain); without it the
   * writer compresses itself.
   */
  writeCompressed?(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<void>;
  /**
   * Compresses one unit's data without touching the image, so callers can
   * compress many units in parallel and write them in order. Returns null
   * when the result would not be smaller.
   */
  compressUnit?(data: Uint8Array): Promise<Uint8Array | null>;
  /**
   * Copies guest bytes straight from another store (copy offload). Returns
   * false when the format cannot; the caller then reads and writes.
   */
  copyFrom?(offset: number, length: number, source: ByteStore, sourceOffset: number): Promise<boolean>;
  /**
   * Copies guest bytes from another store with convert's sparse scan, in one
   * request (see {@link ByteStore.copyRuns}); for formats whose guest bytes
   * have a fixed place. Undefined when it cannot (nothing was written).
   */
  copyRuns?(offset: number, source: ByteStore, sourceOffset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns | undefined>;
  // --- backing chains (commit, rebase) ---
  /**
   * Drops every cluster the image holds so that it reads through to its
   * backing file (qemu's make_empty, run by `commit` unless `-d`). Crash-safe:
   * references are dropped before the space is freed (leaks at worst).
   */
  makeEmpty?(): Promise<void>;
  /**
   * Rewrites the backing file name and format recorded in the header (one
   * header write, flushed); undefined makes the image standalone. Nothing
   * is copied: the caller keeps the guest view (`rebase`).
   */
  setBacking?(ref: BackingRef | undefined): Promise<void>;
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
   * Decodes only `extent`'s own bytes into `into` (`extent.length` bytes).
   * For formats whose compressed units vary in size or are large (dmg
   * chunks, cloop blocks, up to 64 MiB): the block layer then needs no
   * unit-sized buffer, and the driver keeps the decoded unit for the next
   * read. Used instead of {@link FormatImage.readCompressed} when present.
   */
  readCompressedPart?(extent: CompressedExtent, into: Uint8Array): Promise<void>;
  /**
   * Decodes `extents` (compressed, consecutive in guest order) into `into`,
   * which they cover exactly: units stored together are read and decoded
   * together, on every core. Optional; without it each extent goes through
   * {@link FormatImage.readCompressed}.
   */
  readCompressedRun?(extents: readonly CompressedExtent[], into: Uint8Array): Promise<void>;
  /**
   * When this resolves true, block status also asks the host store for holes
   * inside data extents (qemu's BDRV_BLOCK_RECURSE: raw files, and qcow2
   * images made with metadata preallocation). Absent means false.
   */
  recurseHostStatus?(): Promise<boolean>;
  /**
   * True when qemu's driver for the format reports no block status (vhdx):
   * block status then calls every range allocated data without a host
   * offset, as qemu does, whatever the mapping says. Reads still follow
   * the mapping.
   */
  readonly opaqueStatus?: boolean | undefined;
  /**
   * False when qemu's driver for the format cannot reopen an image read/write
   * (no bdrv_reopen_prepare: parallels), so it cannot be the base `commit`
   * writes into. Absent means it can.
   */
  readonly reopenable?: boolean | undefined;
  /** Gives the image a reader for the layers below (copy-on-write source) and their virtual size. */
  attachBacking?(reader: BackingReader | undefined, size?: number): void;
  /** Present when the image is open for writing and the format can write. */
  readonly writer?: ImageWriter | undefined;
  /** Present when the format can change its size. */
  readonly resizer?: ImageResizer | undefined;
  /** Persistent dirty bitmaps, when the format can store them */
  readonly bitmaps?: ImageBitmaps | undefined;
  /** Present when the format can check its consistency (`qemu-img check`). */
  readonly checker?: ImageChecker | undefined;
  /** Present when the image is writable and the format can change options in place (`amend`). */
  readonly amender?: ImageAmender | undefined;
  /** Present when the format has internal snapshots (qcow2): `snapshot`, `convert -l`. */
  readonly snapshots?: SnapshotOps | undefined;
  /**
   * Bytes the image takes on disk (`info`'s actual-size) when that is more
   * than its main file's: qemu adds each vmdk extent's file. Absent: the
   * main file's.
   */
  allocatedSize?(): Promise<number | undefined>;
  /** The format-specific part of `info`. */
  describe(): Promise<FormatDescription>;
  /** Writes back cached metadata and flushes the stores. */
  flush(): Promise<void>;
  /** Flushes (when writable) and closes the stores the image owns. */
  close(): Promise<void>;
}

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

// --- measure, persistent bitmaps ---

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
}

/** One persistent dirty bitmap as its image records it. */
export interface PersistentBitmapInfo {
  /** Bitmap name (unique in the image). */
  readonly name: string;
  /** Bytes of guest data per bit. */
  readonly granularity: number;
  /** Recording new writes (qcow2's `auto` flag). */
  readonly enabled: boolean;
  /** Inconsistent: the image was not closed cleanly while it recorded (qcow2's `in_use`). */
  readonly inUse: boolean;
}

/**
 * Persistent dirty bitmaps of one open image. Bits are one per
 * `granularity` bytes of guest data, packed LSB first. Changes made
 * through the mutators are written back when the image is closed (or
 * flushed); enabled bitmaps of a writable image record every write.
 */
export interface ImageBitmaps {
  /** False when this image cannot store bitmaps (qcow2 v2): `add` then fails with qemu's message. */
  readonly supported: boolean;
  /** The bitmaps, in directory order. */
  list(): readonly PersistentBitmapInfo[];
  /** The dirty bits of `name` (length `ceil(ceil(virtualSize / granularity) / 8)`). */
  read(name: string): Promise<Uint8Array>;
  /** Present when the image is writable. Adds an empty bitmap. */
  add?(name: string, options: { granularity?: number | undefined; enabled?: boolean | undefined }): Promise<void>;
  /** Removes a bitmap. */
  remove?(name: string): Promise<void>;
  /** Clears every bit of a bitmap. */
  clear?(name: string): Promise<void>;
  /** Starts or stops recording writes. */
  setEnabled?(name: string, enabled: boolean): Promise<void>;
  /** Sets the bits covering every range `bits` (of `granularity`) marks dirty. */
  merge?(name: string, bits: Uint8Array, granularity: number): Promise<void>;
  /**
   * Adds a bitmap with given content and flags (convert --bitmaps). The
   * caller checked the name is free.
   */
  import?(info: PersistentBitmapInfo, bits: Uint8Array): Promise<void>;
}

/** What an amend changes: `-o` values typed by {@link ImageAmender.options}. */
export interface AmendRequest {
  /** The options given, in the order given (later ones win). */
  readonly values: ReadonlyMap<string, OptionValue>;
  /** `--force` (LUKS keyslot management). */
  readonly force: boolean;
  /** Checked between steps; an abort leaves the image consistent (leaks at worst). */
  readonly signal?: AbortSignal | undefined;
  /** Progress of the long steps (zero expansion, refcount rewrite), as done/total units. */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** Changing format options of an open, writable image in place (qemu's bdrv_amend_options). */
export interface ImageAmender {
  /** The options `amend -o` accepts, in the driver's list order. */
  readonly options: readonly OptionSpec[];
  /** Applies the options; errors carry qemu-img's messages. */
  amend(request: AmendRequest): Promise<void>;
}

// --- internal snapshots (snapshot, convert -l) ---

/** Names an internal snapshot: by `id`, by `name`, or both (then both must match). */
export interface SnapshotRef {
  /** The snapshot ID ("1", "2", …). */
  readonly id?: string | undefined;
  /** The snapshot name (tag). */
  readonly name?: string | undefined;
}

/** What a new internal snapshot records. */
export interface NewSnapshotRequest {
  /** Its name (tag); names need not be unique, as in qemu. */
  readonly name: string;
  /** Creation time, seconds since the epoch (default: now). */
  readonly dateSec?: number | undefined;
  /** Nanoseconds part of the creation time (default: now, microsecond precision as qemu). */
  readonly dateNsec?: number | undefined;
}

/**
 * Internal snapshots of one open image. The mutators are present only when
 * the image is open for writing; each leaves the image consistent on disk
 * (crash-safe order: at worst leaked clusters) and flushed.
 */
export interface SnapshotOps {
  /** The snapshots, in table order. */
  list(): readonly SnapshotInfo[];
  /** Takes a snapshot of the current content; resolves to the new entry (its ID assigned as qemu does). */
  create?(request: NewSnapshotRequest): Promise<SnapshotInfo>;
  /** Makes the current content (and virtual size) that of snapshot `idOrName` (ID first, then name). */
  apply?(idOrName: string): Promise<void>;
  /** Deletes the first snapshot matching `ref`; freed clusters become reusable. Resolves to what was deleted. */
  delete?(ref: SnapshotRef): Promise<SnapshotInfo>;
  /**
   * A read-only image of a snapshot's content (`convert -l`), at the
   * image's current virtual size as qemu's load_tmp gives it. It shares
   * this image's file: close it before closing this image.
   */
  open(ref: SnapshotRef): Promise<FormatImage>;
}
