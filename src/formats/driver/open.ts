/**
 * What a driver's `open` and `create` receive: options, the resolver for
 * files an image names, and the warnings an open may report.
 */
import type { OptionValue } from '../../core/options.js';
import type { Secrets } from '../../core/secrets.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { FormatDriver } from './format.js';

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

/**
 * The `data-file` the open options give: a node name (vdisk has no named
 * nodes, so opening it fails as qemu fails on an unknown one), or a file
 * node opened with the image's locking and cache mode.
 */
export type DataFileOverride =
  | {
      /** A node name (`data-file=NAME`). */
      readonly kind: 'reference';
      /** The name given. */
      readonly name: string;
    }
  | {
      /** A file node (`data-file.filename=…`). */
      readonly kind: 'node';
      /** Opens it, locked as the image's data. */
      open(readOnly: boolean): Promise<ByteStore>;
    };

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
   * A data file the open options name instead of the one the image records
   * (qemu's `data-file` child: `data-file.filename=…` in `--image-opts`), for
   * drivers declaring a `data-file` runtime option. Opened when the driver
   * asks, as qemu opens the child where its driver does.
   */
  readonly dataFile?: DataFileOverride | undefined;
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
