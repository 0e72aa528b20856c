/**
 * Opening one layer of a chain on an open store: the format (given or
 * probed), the file's image lock (which depends on the format, as qemu's
 * child roles do), the driver, and the files the image names.
 */
import { dirname } from 'node:path';

import { InvalidArgumentError, UnknownFormatError, VdiskError } from '../core/errors.js';
import type { ByteStore, DataFileOverride, ExternalFiles, FormatDriver, FormatImage, OpenWarning } from '../formats/driver.js';
import type { LockingMode } from '../io/byte-store.js';
import type { CacheMode } from '../core/cache-mode.js';
import { FileStore } from '../io/file-store.js';
import { externalFiles } from './external.js';
import { checkFormatAllowed, checkVirtualSize, type IngestPolicy } from './ingest-policy.js';
import type { Layer } from './layer.js';
import { fullBackingName } from './path-combine.js';
import { probeStore } from './probe.js';
import type { DriverRegistry } from './registry.js';
import type { ResolverOptions } from './resolver.js';
import type { DataFileChild } from './spec-open.js';
import { isPassThroughFormat } from '../formats/index.js';

/** What every layer of one open shares. */
export interface LayerContext {
  readonly registry: DriverRegistry;
  /** Resolver, cache and locking settings (the open's options). */
  readonly options: ResolverOptions & {
    readonly cache?: CacheMode | undefined;
    readonly forceShare?: boolean | undefined;
    readonly noShare?: boolean | undefined;
    readonly locking?: LockingMode | undefined;
    readonly refuse?: ReadonlySet<string> | undefined;
    readonly check?: boolean | undefined;
    readonly onWarning?: ((warning: OpenWarning) => void) | undefined;
    readonly policy?: IngestPolicy | undefined;
    /** The open only describes the images (info; qemu's BDRV_O_NO_IO). */
    readonly describeOnly?: boolean | undefined;
  };
  /** Where `untrusted` mode confines references (default: the directory of the layer's own file). */
  readonly rootDir?: string | undefined;
  /** Replaces the resolver for the files images name (the inspector records them instead of opening them). */
  readonly external?: ExternalFiles | undefined;
}

/** One layer to open. */
export interface LayerRequest {
  readonly store: ByteStore;
  /** The name the layer is shown under. */
  readonly filename: string;
  /** The file's own path: references inside the image (backing, extents) are relative to it. */
  readonly path: string;
  readonly format: string | undefined;
  readonly readOnly: boolean;
  /** The driver's open options (`--image-opts`, `json:`). */
  readonly runtime?: readonly (readonly [string, string])[] | undefined;
  /** The node's `file.locking` (`false` for off, `'auto'`); combined with the open's `locking`. */
  readonly locking?: LockingMode | undefined;
  /** A `data-file` child the options give instead of the image's own. */
  readonly dataFile?: DataFileChild | undefined;
}

/** The data file the options give, as the driver opens it: locked as the image's data, as qemu locks every child. */
function dataFileFor(child: DataFileChild | undefined, lock: { shareAll: boolean; noShare?: boolean | undefined }, locking: LockingMode, opened: ByteStore[]): DataFileOverride | undefined {
  if (child?.kind !== 'node') return child;
  return {
    kind: 'node',
    async open(readOnly) {
      const { store, locking: own } = await child.open(readOnly);
      opened.push(store);
      const mode = combineLocking(own, locking);
      if (mode !== false) await store.lock?.({ ...lock, write: !readOnly, role: 'data', optional: mode === 'auto' });
      return store;
    },
  };
}

/** The driver a store holds: probed as qemu probes (raw is the fallback). */
export async function probeDriver(store: ByteStore, filename: string, registry: DriverRegistry): Promise<FormatDriver> {
  const found = await probeStore(store, filename, registry);
  if (!found) throw new UnknownFormatError(`Could not determine the format of '${filename}'`);
  return found.driver;
}

/** qemu's role of a format's file: raw passes the whole disk through (a window of it, with offset/size). */
function fileRole(driver: FormatDriver, runtime: LayerRequest['runtime']): 'metadata' | 'data' | 'filtered' {
  if (!isPassThroughFormat(driver.name)) return 'metadata';
  return runtime?.some(([k]) => k === 'offset' || k === 'size') ? 'data' : 'filtered';
}

/** The stricter-to-looser combination of two locking settings: off wins, then auto. */
function combineLocking(a: LockingMode | undefined, b: LockingMode | undefined): LockingMode {
  if (a === false || b === false) return false;
  return a === 'auto' || b === 'auto' ? 'auto' : true;
}

/** qemu's device protocols, which may be named as the format: the device itself is then the image. */
export const DEVICE_FORMATS: ReadonlySet<string> = new Set(['host_device', 'host_cdrom']);

/** The driver `format` names; qemu's words when there is none. */
export function namedDriver(registry: DriverRegistry, format: string): FormatDriver {
  const d = registry.find(format);
  if (!d) throw new UnknownFormatError(`Unknown driver '${format}'`, { data: { format } });
  return d;
}

/**
 * Opens a layer. The store is locked here, once the format is known; on
 * failure the files the image named are closed (the store is the caller's).
 */
export async function openLayer(req: LayerRequest, ctx: LayerContext): Promise<Layer> {
  let driver: FormatDriver;
  let probedRaw = false;
  if (req.format !== undefined && DEVICE_FORMATS.has(req.format)) {
    if (req.store.device !== true) throw new InvalidArgumentError(`'${req.format}' driver requires '${req.path}' to be either a character or block device`);
    driver = { ...namedDriver(ctx.registry, 'file'), name: req.format };
  } else if (req.format !== undefined) {
    driver = namedDriver(ctx.registry, req.format);
    if (driver.name === 'file' && req.store.device === true) throw new InvalidArgumentError(`'file' driver requires '${req.path}' to be a regular file`);
  } else {
    driver = await probeDriver(req.store, req.path, ctx.registry);
    probedRaw = driver.name === 'raw';
  }
  const o = ctx.options;
  // The policy's allow-list, before the driver parses a byte of the image.
  checkFormatAllowed(o.policy, driver.name, req.path);
  const locking = combineLocking(req.locking, o.locking);
  const lock = { write: !req.readOnly, shareAll: o.forceShare === true, noShare: o.noShare, role: fileRole(driver, req.runtime), optional: locking === 'auto' };
  if (locking !== false) await req.store.lock?.(lock);
  const extra: ByteStore[] = [];
  let image: FormatImage;
  try {
    // External files (data file, extents) share the cache mode and locking of the file that names them.
    const cache = req.store instanceof FileStore ? req.store.cache : o.cache;
    const fileOpts = { ...o, cache, lock: { shareAll: lock.shareAll, noShare: lock.noShare }, locking };
    const external = ctx.external ?? externalFiles(req.path, ctx.rootDir ?? dirname(req.path), fileOpts, extra);
    const dataFile = dataFileFor(req.dataFile, fileOpts.lock, locking, extra);
    image = await driver.open(req.store, { readOnly: req.readOnly, filename: req.path, external, dataFile, check: o.check, onWarning: o.onWarning, runtime: req.runtime, secrets: o.secrets, describeOnly: o.describeOnly, maxPbkdf2Iterations: pbkdf2Limit(o.maxPbkdf2Iterations, o.policy?.maxPbkdf2Iterations) });
  } catch (err) {
    await Promise.allSettled(extra.map((s) => s.close()));
    throw err;
  }
  try {
    checkVirtualSize(o.policy, image.virtualSize, req.path);
  } catch (err) {
    await image.close();
    await Promise.allSettled(extra.map((s) => s.close()));
    throw err;
  }
  const backing = image.backing;
  return {
    image,
    files: [req.store, ...extra],
    filename: req.filename,
    path: req.path,
    format: driver.name,
    probedRaw,
    backing,
    backingPath: backing ? fullBackingName(req.path, backing.filename) : undefined,
  };
}

/** The stricter of the caller's and the policy's PBKDF2 caps (undefined: the driver's default). */
function pbkdf2Limit(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** Wraps an open failure the way qemu-img words it: `Could not open 'x': <why>`. */
export function openError(filename: string, err: unknown): unknown {
  if (!(err instanceof VdiskError)) return err;
  const prefix = `Could not open '${filename}': `;
  return err.rephrase(prefix + err.message, { file: err.file ?? filename });
}

/**
 * The error under {@link openError}'s `Could not open 'x': ` wrapper, when
 * `err` is one: callers that open a file themselves (blk_new_open, as create
 * and rebase use it) report the open's own error, without qemu-img's prefix.
 */
export function unwrapOpenError(filename: string, err: VdiskError): VdiskError {
  const inner = err.cause;
  return inner instanceof VdiskError && err.message === `Could not open '${filename}': ${inner.message}` ? inner : err;
}

/** For each backing error, what opening that backing file on its own would have reported. */
const memberErrors = new WeakMap<object, unknown>();

/**
 * qemu's wording for a backing file that fails to open: `Could not open 'top': Could not open backing file: ...`,
 * the middle part once per level (`depth`) down to the failed file. `alone`: the error an open of the backing
 * file by its own name gives (default `err`), which {@link chainMemberError} reports.
 */
export function backingError(referrer: string, err: unknown, alone: unknown = err, depth = 1): unknown {
  if (!(err instanceof VdiskError)) return err;
  // Each image between the top and the one that failed adds its own prefix, as qemu's nested opens do.
  const wrapped = openError(referrer, err.rephrase(`${'Could not open backing file: '.repeat(depth)}${err.message}`, { offset: undefined }));
  if (wrapped instanceof Error) memberErrors.set(wrapped, alone);
  return wrapped;
}

/**
 * The error `info --backing-chain` reports for a chain whose backing file failed to open: qemu-img
 * opens each image of the chain by its own name, so it names the backing file, not the image above it.
 */
export function chainMemberError(err: unknown): unknown {
  return err instanceof Error && memberErrors.has(err) ? memberErrors.get(err) : err;
}
