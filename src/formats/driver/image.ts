/**
 * One open image (one layer of a chain) and the `info` facts it describes.
 * Its capability groups (writer, resizer, checker, snapshots, bitmaps,
 * amender) are optional objects: absent means the format or the open mode
 * cannot.
 */
import type { ByteStore } from '../../io/byte-store.js';
import type { ImageAmender } from './amend.js';
import type { ImageBitmaps } from './bitmaps.js';
import type { ImageChecker } from './check.js';
import type { BackingReader, BackingRef, CompressedExtent, Extent } from './extent.js';
import type { SnapshotInfo, SnapshotOps } from './snapshots.js';
import type { ImageWriter } from './writer.js';

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
  /**
   * Set where qemu's driver answers block status one unit at a time (vmdk
   * grains, qcow clusters, vdi blocks) while {@link FormatImage.mapping}
   * joins neighbouring units: convert scans each such unit of a data run for
   * zeros on its own, as qemu-img scans each status run (`-S`).
   */
  readonly statusSpan?: number | undefined;
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
  /**
   * The first extent of `[offset, offset+length)`, as `mapping(offset,
   * length, 1)` would give it, when the image knows it without reading or
   * waiting (a read-only image keeping the runs of its last walk); undefined
   * otherwise. Optional: block status asks it before {@link FormatImage.mapping}.
   */
  knownExtent?(offset: number, length: number): Extent | undefined;
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

/** Changing an image's virtual size. */
export interface ImageResizer {
  /** Sets the virtual size; the caller has checked that shrinking was asked for. */
  resize(newSize: number, options: { shrink: boolean; preallocation?: string | undefined }): Promise<void>;
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
