/**
 * ByteStore: where bytes live. Every layer above reaches bytes through this
 * interface, so a format driver works the same on a local file, in memory,
 * or (later) over HTTP or NBD.
 */

/** Device and inode of a store's file, for loop and same-file detection. */
export interface StoreIdentity {
  /** Device number. */
  readonly dev: number;
  /** Inode number. */
  readonly ino: number;
}

/** A run of a store that holds data or is a hole (reads as zeros without using space). */
export interface HostExtent {
  /** First byte. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
  /** True for data, false for a hole. */
  readonly data: boolean;
  /** Data that the store knows reads as zeros (NBD's ZERO status without HOLE: allocated zeros). */
  readonly zero?: boolean | undefined;
  /** A hole the store cannot say reads as zeros (qemu's null-co without `read-zeroes`): neither data nor zeros. */
  readonly unknown?: boolean | undefined;
}

/**
 * How convert splits the bytes it copies into data and zero runs (qemu's
 * is_allocated_sectors_min): zero runs shorter than `minBytes` count as data (0: everything
 * is data, `-S 0`), run ends are moved to `alignment` sectors of the target,
 * and `guest` is where the bytes go in the target image.
 */
export interface SparseScan {
  /** Guest offset in the target image where the scanned bytes go. */
  readonly guest: number;
  /** Shortest zero run reported as zeros; 0 reports everything as data. */
  readonly minBytes: number;
  /** Sectors of the target that run ends are moved to. */
  readonly alignment: number;
  /** Scan each unit on its own (see {@link ScanUnit}); absent: the request is one run. */
  readonly unit?: ScanUnit | undefined;
}

/**
 * The span a source's block status answers for at most (qemu's vmdk, qcow
 * and vdi drivers answer one grain, cluster or block per call): qemu-img
 * scans each such run for zeros on its own, so a zero unit between data
 * units is a hole whatever `-S` says.
 */
export interface ScanUnit {
  /** The unit's length in bytes. */
  readonly size: number;
  /** A guest offset (of the scan's `guest`) where a unit starts. */
  readonly base: number;
}

/**
 * The runs a sparse scan found, in order: a positive length is data, a
 * negative one zeros.
 */
export type SparseRuns = readonly number[];

/** qemu's image-lock permissions (OFD locks at bytes 100+perm and 200+perm). */
export interface LockRequest {
  /** The image will be written (and may be resized). */
  readonly write: boolean;
  /** Share everything with other users (qemu-img -U); read-only opens only. */
  readonly shareAll: boolean;
  /**
   * What the file is to the image (qemu's child role), which decides what
   * the open lets others do: `metadata` (the default: an image file whose
   * metadata must stay consistent; writers and resizers refused), `data`
   * (guest data only, as vmdk flat extents and qcow2 data files: resizers
   * refused), `filtered` (the whole guest disk, raw: nothing refused).
   */
  readonly role?: 'metadata' | 'data' | 'filtered' | undefined;
  /** Refuse writers and resizers whatever the role (qemu's BDRV_O_NO_SHARE: convert's sources). */
  readonly noShare?: boolean | undefined;
  /**
   * The locks qemu takes while it creates a file over whatever is there
   * (raw_co_create): writing and resizing used, resizing not shared, so a
   * file another process reads or writes is never emptied. Implies `write`.
   */
  readonly create?: boolean | undefined;
  /**
   * Take the locks where the process can, and go on without them where it
   * cannot (qemu's `locking=auto`). Without it, a write lock where locking
   * is unavailable fails (see {@link LockingMode}).
   */
  readonly optional?: boolean | undefined;
}

/**
 * Whether an open takes image locks: `true` (the default) takes them and,
 * where the process cannot (no native module), refuses to open an existing
 * file for writing; `'auto'` takes them where it can and goes on without
 * them elsewhere (qemu's default `locking=auto`); `false` takes none (qemu's
 * `file.locking=off`; the CLI's `--no-lock`).
 */
export type LockingMode = boolean | 'auto';

/**
 * The bytes of a store. To implement one, see the guide "Writing a custom ByteStore"
 * (docs/custom-bytestore.md; examples/http-range-store.ts is one over HTTP).
 *
 * Ownership: whoever opens a store closes it. vdisk closes the stores it
 * opens itself (paths given to `open`, `convert` and the other jobs, and
 * the backing files, data files and extents those name); a store the
 * caller passes in is only borrowed — closing the image, or an open or a
 * job that fails, leaves it open, with no image lock left on it, for the
 * caller to close.
 */
export interface ByteStore {
  /** A name for messages: the path for files. */
  readonly name: string;
  /** True when writes are refused. */
  readonly readOnly: boolean;
  /** True for a device (a file store opened with `allowDevices`): its size cannot change, nor be preallocated. */
  readonly device?: boolean | undefined;
  /** Current length in bytes. */
  size(): Promise<number>;
  /**
   * Fills `into` from `offset`. Bytes past the end read as zeros (as a file
   * read past EOF does in QEMU). Returns how many bytes came from the store.
   */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** Writes all of `data` at `offset`, growing the store if needed. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Sets the length; new bytes read as zero. `exact` (a resize, as opposed
   * to a create that may leave a store larger than asked) matters only for
   * stores of fixed size (devices), which then refuse any other size.
   */
  truncate(size: number, exact?: boolean): Promise<void>;
  /** Makes written data durable (fdatasync for files). */
  flush(): Promise<void>;
  /** Releases the store; further calls fail. */
  close(): Promise<void>;
  /** Bytes the store really occupies (a file's allocated blocks), when known. */
  allocatedSize?(): Promise<number | undefined>;
  /** Device and inode, when the store is a file. */
  identity?(): StoreIdentity | undefined;
  /** Allocates `[offset, offset+length)` so later writes cannot fail for space (preallocation). */
  preallocate?(offset: number, length: number, mode: 'falloc' | 'full'): Promise<void>;
  /**
   * Data and hole runs covering a non-empty prefix of the range, when the
   * store can tell cheaply (SEEK_DATA/SEEK_HOLE); undefined when it cannot.
   */
  extents?(offset: number, length: number): Promise<readonly HostExtent[] | undefined>;
  /**
   * Makes the range read as zeros without writing them: punches a hole when
   * `unmap`, else zeroes in place. Returns false when the store cannot.
   */
  zeroRange?(offset: number, length: number, unmap: boolean): Promise<boolean>;
  /**
   * Copies `length` bytes from `source` at `sourceOffset` to `offset` inside
   * the kernel (copy_file_range). Returns false when it cannot; the caller
   * then reads and writes.
   */
  copyFrom?(source: ByteStore, sourceOffset: number, offset: number, length: number): Promise<boolean>;
  /**
   * Fills `into` from `offset` (as read() does) and splits it into `scan`'s
   * runs in the same request, off the main thread. Undefined when the store
   * cannot; the caller then reads and scans itself.
   */
  readRuns?(offset: number, into: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined>;
  /**
   * Reads `length` bytes of `source` at `sourceOffset` into `buffer`, splits
   * them into `scan`'s runs and writes the data runs at `offset`, all in one
   * request off the main thread; the zero runs are left to the caller.
   * Undefined when the stores cannot (nothing was written then).
   */
  copyRuns?(source: ByteStore, sourceOffset: number, offset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns | undefined>;
  /**
   * Whether `length` bytes at `offset` equal those of `other` at
   * `otherOffset`, read and compared off the main thread in pieces the size
   * of the scratch buffers: the offset (from `offset`) of the first 512-byte
   * block that differs, or -1. Undefined (at once) when the stores cannot;
   * a failed read rejects, and the caller may read the ranges itself to
   * word it.
   */
  compareWith?(offset: number, other: ByteStore, otherOffset: number, length: number, scratch: Uint8Array, otherScratch: Uint8Array): Promise<number> | undefined;
  /**
   * Splits the bytes `buffer` holds into `scan`'s runs and writes the data
   * runs at `offset`, in one request off the main thread; the zero runs are
   * left to the caller. Undefined when the store cannot (nothing was
   * written then).
   */
  writeRuns?(offset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined>;
  /** Takes qemu-compatible image locks; throws LockedError when another process holds a conflicting one. */
  lock?(request: LockRequest): Promise<void>;
  /** Releases the image locks {@link ByteStore.lock} took; the store stays open. */
  unlock?(): Promise<void>;
}
