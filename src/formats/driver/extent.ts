/**
 * Extents: how one layer describes a run of guest address space (the
 * answer of {@link FormatImage.mapping}), and the backing reference an
 * image records.
 */
import type { ByteStore } from '../../io/byte-store.js';
import type { FormatImage } from './image.js';

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
  /**
   * The run is not known to read as zeros even with nothing below it (qemu's
   * null-co without `read-zeroes`: a driver that cannot have a backing file
   * leaves its block status neither data nor zero). vdisk still reads zeros there.
   */
  readonly unknownContent?: boolean | undefined;
}

/** One run of guest address space as a single layer describes it. */
export type Extent = DataExtent | ZeroExtent | CompressedExtent | UnallocatedExtent;

/** Reads guest data from the layers below an image (for copy-on-write). */
export type BackingReader = (offset: number, into: Uint8Array) => Promise<void>;
