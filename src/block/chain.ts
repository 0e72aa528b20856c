/**
 * Opening an image and its backing chain: iteratively (never recursively),
 * with loop detection by device and inode, a depth cap, and every backing
 * reference passed through the resolver before anything is opened.
 */
import { dirname } from 'node:path';

import { BackingLoopError, ChainDepthError, InvalidArgumentError, VdiskError } from '../core/errors.js';
import { isJsonName, parseJsonName, type ImageOptions } from '../core/image-options.js';
import { LIMITS } from '../core/limits.js';
import { QDict } from '../core/qdict.js';
import type { ByteStore } from '../formats/driver.js';
import type { LockingMode } from '../io/byte-store.js';
import type { CacheMode } from '../core/cache-mode.js';
import { fsError } from '../io/errno.js';
import { FileStore } from '../io/file-store.js';
import { borrowStore } from '../io/borrowed-store.js';
import type { NetworkOptions } from '../io/network-options.js';
import { networkScheme, openNetworkStore } from './network-stores.js';
import { localName, shownLocalName, type LocalName } from './protocol-name.js';
import { stat } from '../io/fs-names.js';
import { redactUrl } from '../io/http/url.js';
import type { Layer } from './layer.js';
import { backingError, DEVICE_FORMATS, namedDriver, openError, openLayer, type LayerContext } from './layer-open.js';
import { layerAtSnapshot, type SnapshotSelector } from './snapshot-layer.js';
import { defaultRegistry, type DriverRegistry } from './registry.js';
import { assertRegularFile, openedReferenceCheck, resolveReference, type ResolverOptions } from './resolver.js';
import { openSpecChain } from './spec-chain.js';
import { checkImageTarget } from './target-check.js';
import { policyTrust, unwrapSettings, type IngestPolicy } from './ingest-policy.js';
import { unwrapStore, type Unwrapped } from './unwrap.js';

export { backingError, chainMemberError, openError } from './layer-open.js';

/** How to open an image. */
export interface OpenImageOptions extends ResolverOptions {
  /** The image's format; probed when omitted (raw is the fallback). */
  readonly format?: string | undefined;
  /** Open read-only (the default) or for writing. */
  readonly readOnly?: boolean | undefined;
  /** Headers, auth hook, retries and concurrency for images named by URL (`http(s)://`, `nbd://`, `s3://`). */
  readonly network?: NetworkOptions | undefined;
  /** Open the backing chain (default true). With false, unallocated ranges read as zeros. */
  readonly backing?: boolean | undefined;
  /** Most backing files below the top image (default 256). */
  readonly maxChainDepth?: number | undefined;
  /** Drivers to use (default: the built-in ones). */
  readonly registry?: DriverRegistry | undefined;
  /** Allow block/character devices as the top image (never as backing files). */
  readonly allowDevices?: boolean | undefined;
  /** Share the images with other writers (qemu-img -U); read-only opens only. */
  readonly forceShare?: boolean | undefined;
  /**
   * Image locks (qemu's, so vdisk and QEMU see each other's opens): `true`
   * (the default) takes them and, where this process cannot (no native
   * module, see `capabilities()`), refuses to open an image for writing;
   * `'auto'` takes them where it can; `false` takes none (qemu's
   * `file.locking=off`, the CLI's `--no-lock`): only for images nothing
   * else can be using.
   */
  readonly locking?: LockingMode | undefined;
  /**
   * The open only describes the images (`info`; qemu's BDRV_O_NO_IO): for
   * images named by options, backing options are refused as unknown, a
   * JSON-null backing is ignored and the chain follows the headers.
   */
  readonly describeOnly?: boolean | undefined;
  /**
   * Open options for a top image named by a plain file name, as
   * `[key, text]` (convert's new target takes the key secrets of its
   * create options this way, as img_convert does).
   */
  readonly runtime?: readonly (readonly [string, string])[] | undefined;
  /**
   * Let nobody write or resize any file of the chain while it is open, raw
   * files included (qemu's BDRV_O_NO_SHARE, which convert uses for its
   * sources so that they cannot change under the copy).
   */
  readonly noShare?: boolean | undefined;
  /**
   * Files (`dev:ino`) the open may not write: a writable open of one (an
   * extent or data file of the image) fails as qemu's write-lock conflict
   * (convert passes the files its sources consist of).
   */
  readonly refuse?: ReadonlySet<string> | undefined;
  /** Receives warnings about the open: a writable image whose raw format was only guessed, and the drivers' (see the driver's OpenOptions.onWarning). */
  readonly onWarning?: ((warning: { code: string; message: string }) => void) | undefined;
  /**
   * Also open the backing file at this depth (1 = the top's backing file)
   * for writing, with write locks (commit's base; see BlockDevice.below).
   */
  readonly writableDepth?: number | undefined;
  /** Open for a consistency check or repair (qemu's BDRV_O_CHECK; see the driver's OpenOptions.check). */
  readonly check?: boolean | undefined;
  /**
   * Cache mode of the top image's file (`-t`; default `writeback`, see
   * {@link CacheMode}). Its data files and extents use it too, as in qemu.
   */
  readonly cache?: CacheMode | undefined;
  /** Cache mode of the backing files (`-T` where a command has one); default `cache`, as qemu's backing files inherit it. */
  readonly backingCache?: CacheMode | undefined;
  /**
   * convert -l: open the top image at this internal snapshot,
   * read-only (`{id}`, `{name}`, both, or a string tried as ID then name).
   */
  readonly snapshot?: SnapshotSelector | undefined;
  /**
   * What an upload must satisfy (formats, sizes, inflation, trust): enforced
   * for every image of the chain. Giving one makes the trust mode `none`
   * unless the policy or `trust` says otherwise (the stricter wins).
   */
  readonly policy?: IngestPolicy | undefined;
  /**
   * Inflate a compressed or zipped (gzip, zstd, bzip2, zip) top image into a private temporary file
   * before probing it (default true; read-only opens of a path or store
   * whose format is not given). False reads it as it is, as qemu-img does.
   */
  readonly unwrap?: boolean | undefined;
  /** Stops a long open (inflating a wrapped upload). */
  signal?: AbortSignal | undefined;
}

/** qemu-img's warning for a writable open of a probed raw image (the CLI prints it to stderr as is). */
export function probedRawWarning(filename: string): string {
  return (
    `WARNING: Image format was not specified for '${filename}' and probing guessed raw.\n` +
    '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n' +
    "         Specify the 'raw' format explicitly to remove the restrictions."
  );
}

/**
 * What `open` accepts: a path (a `json:{...}` name included), a store, or
 * parsed image options (`--image-opts`). A store stays the caller's: the
 * open borrows it, and neither closing the image nor a failed open closes it.
 */
export type ImageTarget = string | ByteStore | ImageOptions;

/** True for parsed image options. */
export function isImageOptions(target: ImageTarget): target is ImageOptions {
  return typeof target === 'object' && 'options' in target && target.options instanceof QDict;
}

/** The image options a target names, if it names any (`json:` paths are parsed here). */
function specOf(target: ImageTarget): ImageOptions | undefined {
  if (isImageOptions(target)) return target;
  // qemu's null drivers take exactly this file name (null_file_open); the image on them is probed.
  if (target === 'null-co://' || target === 'null-aio://') return { text: target, options: new QDict().set('file.driver', target.slice(0, -3)), warnings: [] };
  if (typeof target !== 'string' || !isJsonName(target)) return undefined;
  try {
    return parseJsonName(target);
  } catch (err) {
    throw openError(target, err);
  }
}

/**
 * `-f null-co` / `-f null-aio`: the null driver itself is the image, as qemu
 * uses its protocol node; its one allowed file name is `null-co://` (`null-aio://`).
 */
function nullFormatSpec(target: ImageTarget, format: string | undefined): ImageOptions | undefined {
  if ((format !== 'null-co' && format !== 'null-aio') || typeof target !== 'string') return undefined;
  if (target !== `${format}://`) throw openError(target, new InvalidArgumentError(`The only allowed filename for this driver is '${format}://'`));
  return { text: target, options: new QDict().set('driver', format), warnings: [] };
}

/** The name a target goes by in messages. */
export function targetName(target: ImageTarget): string {
  return typeof target === 'string' ? target : isImageOptions(target) ? target.text : target.name;
}

/**
 * A wrapped upload's inflated copy, when the open may unwrap (read-only,
 * format probed) and `store` is wrapped. The upload's own file is closed
 * once inflated; a caller's store stays open (it is theirs).
 */
async function unwrapTop(target: string | ByteStore, store: ByteStore, options: OpenImageOptions, readOnly: boolean): Promise<Unwrapped | undefined> {
  const settings = unwrapSettings(options);
  if (!readOnly || options.format !== undefined || !settings.enabled) return undefined;
  const inflated = await unwrapStore(store, targetName(target), settings, options.signal);
  if (inflated && typeof target === 'string') await store.close();
  return inflated;
}

/** Opens the top image of a plain path or store (inflated first when it is a wrapped upload); a caller's store is only borrowed. */
async function openPlainTop(target: string | ByteStore, ctx: LayerContext, options: OpenImageOptions, readOnly: boolean): Promise<Layer> {
  const name = targetName(target);
  let store: ByteStore;
  try {
    // An unknown format is refused before the file is looked at, as qemu's bdrv_find_format is.
    if (options.format !== undefined && !DEVICE_FORMATS.has(options.format)) namedDriver(ctx.registry, options.format);
    if (typeof target !== 'string') store = borrowStore(target);
    else if (networkScheme(target) !== undefined) store = await openUrl(target, options, readOnly);
    else store = await openLocal(localName(target), readOnly, options);
  } catch (err) {
    throw openError(shownName(name), err);
  }
  let unwrapped: Unwrapped | undefined;
  try {
    unwrapped = await unwrapTop(target, store, options, readOnly);
    if (unwrapped) store = unwrapped.store;
    // An inflated upload keeps the upload's name: its references resolve beside the upload.
    // A network store names its export as qemu does (nbd://host:10809/x): the image goes by that name.
    const shown = typeof target !== 'string' ? name : networkScheme(target) !== undefined ? store.name : shownLocalName(target);
    const layer = await openLayer({ store, filename: shown, path: shown, format: options.format, readOnly, runtime: options.runtime }, ctx);
    return unwrapped ? { ...layer, wrapper: unwrapped.wrapper } : layer;
  } catch (err) {
    await store.close();
    throw openError(shownName(name), err);
  }
}

/**
 * Opens the file a local name names; `host_device:` and `host_cdrom:` ask
 * for a device, and refuse anything else as qemu's host_device driver does.
 */
async function openLocal(local: LocalName, readOnly: boolean, options: OpenImageOptions): Promise<ByteStore> {
  // An empty name goes to qemu's file driver too, which refuses it before looking for a file.
  if (local.path === '') throw new InvalidArgumentError(`The '${local.protocol ?? 'file'}' block driver requires a file name`);
  if (local.device !== undefined) {
    const st = await stat(local.path).catch((err: unknown) => {
      throw fsError(err, `Could not open '${local.path}'`, local.path);
    });
    if (!st.isBlockDevice() && !st.isCharacterDevice()) {
      throw new InvalidArgumentError(`'${local.device}' driver requires '${local.path}' to be either a character or block device`, { file: local.path });
    }
  }
  return FileStore.open(local.path, { readOnly, allowDevices: options.allowDevices === true || local.device !== undefined, cache: options.cache });
}

/** Opens the store a URL names, with the open's network settings. */
function openUrl(url: string, options: OpenImageOptions, readOnly: boolean): Promise<ByteStore> {
  return openNetworkStore(url, { ...options.network, signal: options.network?.signal ?? options.signal, readOnly });
}

/** A name as errors show it: an HTTP(S) URL without its query string (presigned URLs carry secrets there) or password. */
function shownName(name: string): string {
  return /^https?:\/\//i.test(name) ? redactUrl(name) : name;
}

/** A file-system error on a backing file, named as the image names it (qemu: `Could not open 'b.qcow2': No such file or directory`). */
function asShownName(err: unknown, shown: string): unknown {
  const cause = err instanceof VdiskError ? err.cause : undefined;
  if (typeof (cause as NodeJS.ErrnoException | undefined)?.code !== 'string') return err;
  return fsError(cause, `Could not open '${shown}'`, shown);
}

/** Follows the backing files the last layer's header names, through the resolver, until none is left. */
async function followBacking(layers: Layer[], seen: Map<string, string>, ctx: LayerContext, options: OpenImageOptions, messageName: string): Promise<void> {
  const maxDepth = options.maxChainDepth ?? LIMITS.maxChainDepth;
  for (;;) {
    const top = layers[layers.length - 1];
    if (!top?.backing) break;
    // qemu's nbd_dirname: a relative name in an image read over NBD has nothing to be relative to.
    if (top.backingPath === undefined) throw openError(layers.length === 1 ? messageName : top.filename, new InvalidArgumentError('Cannot generate a base directory for NBD nodes'));
    const name = top.backing.filename;
    if (layers.length > maxDepth) {
      throw new ChainDepthError(
        `Backing chain of '${messageName}' is deeper than ${maxDepth} images (at '${top.filename}'); raise the limit (maxChainDepth) if the chain is genuine`,
        { file: top.filename, reason: 'chain-depth-limit', data: { maxChainDepth: maxDepth } },
      );
    }
    const named = top.backingPath;
    // qemu names the top image and nests one "Could not open backing file: " per level; the failed
    // file's own open error follows (file errors name the file, format errors do not).
    const depth = layers.length;
    const failed = (err: unknown, alone: unknown): unknown => backingError(messageName, err, alone, depth);
    const fileFailed = (err: unknown): unknown => {
      const shownErr = asShownName(err, named);
      return failed(shownErr, openError(named, shownErr));
    };
    let path: string;
    let key: string;
    try {
      path = await resolveReference(name, top.path, 'backing file', ctx.rootDir ?? dirname(top.path), options);
      // A URL is opened over the network (the resolver allowed it); its name is what a loop repeats.
      const ident = networkScheme(path) === undefined ? await assertRegularFile(path, 'backing file', named) : undefined;
      key = ident ? `${ident.dev}:${ident.ino}` : path;
    } catch (err) {
      throw fileFailed(err);
    }
    // Opened, a `file:` name goes by its path, as qemu names the node.
    const shown = shownLocalName(named);
    if (seen.has(key)) {
      throw new BackingLoopError(`Backing file '${name}' creates an infinite loop.`, { file: top.filename, data: { backing: name } });
    }
    seen.set(key, path);
    const rw = options.writableDepth === layers.length;
    let bstore: ByteStore;
    try {
      const verify = openedReferenceCheck(name, top.path, 'backing file', ctx.rootDir ?? dirname(top.path), options);
      bstore = networkScheme(path) !== undefined ? await openUrl(path, options, !rw) : await FileStore.open(path, { readOnly: !rw, cache: options.backingCache ?? options.cache, verify });
    } catch (err) {
      throw fileFailed(err);
    }
    try {
      layers.push(await openLayer({ store: bstore, filename: shown, path: shown, format: top.backing.format, readOnly: !rw }, ctx));
    } catch (err) {
      await bstore.close();
      throw failed(err, openError(shown, err));
    }
  }
}

/**
 * Opens `path` (or `store`, or image options) and, unless disabled, its
 * whole backing chain. Layers come back top first. On any error
 * everything opened is closed.
 */
export async function openChain(target: ImageTarget, given: OpenImageOptions = {}): Promise<Layer[]> {
  checkImageTarget(target);
  const options = given.policy ? { ...given, trust: policyTrust(given.trust, given.policy) } : given;
  const registry = options.registry ?? defaultRegistry;
  const readOnly = options.readOnly ?? true;
  const spec = nullFormatSpec(target, options.format) ?? specOf(target);
  const messageName = targetName(target);
  // Refused before the file is opened, in the open's words (a missing file does not matter);
  // image options are resolved first, as qemu resolves them (their errors come before this one).
  const refuseForceShare = (): void => {
    if (options.forceShare && !readOnly) throw new InvalidArgumentError(`Could not open '${messageName}': force-share=on can only be used with read-only images`);
  };
  if (!spec) refuseForceShare();
  // Untrusted mode confines references to the top image's directory (for options: its file's, once known).
  const ctx: LayerContext = { registry, options, rootDir: spec ? undefined : dirname(typeof target === 'string' ? target : '.') };
  const layers: Layer[] = [];
  const seen = new Map<string, string>();
  try {
    let followHeader = true;
    if (spec) {
      const sctx = {
        registry,
        readOnly,
        withBacking: options.backing !== false,
        describeOnly: options.describeOnly,
        cache: options.cache,
        allowDevices: options.allowDevices,
        nodeNames: new Set<string>(),
      };
      const chain = await openSpecChain(spec, options.format, sctx, ctx);
      layers.push(...chain.layers);
      followHeader = chain.followHeader;
      refuseForceShare();
    } else {
      layers.push(await openPlainTop(target as string | ByteStore, ctx, options, readOnly));
    }
    for (const l of layers) {
      const id = l.image.store.identity?.();
      if (id) seen.set(`${id.dev}:${id.ino}`, l.filename);
      else if (networkScheme(l.path) !== undefined) seen.set(l.path, l.filename);
    }
    if (!readOnly && layers[0]?.probedRaw) options.onWarning?.({ code: 'probed-raw', message: probedRawWarning(layers[0].path) });
    // convert -l: read the top image at an internal snapshot instead of its current state.
    if (options.snapshot !== undefined && layers[0]) layers[0] = await layerAtSnapshot(layers[0], options.snapshot);
    if (options.backing === false || !followHeader) return layers;
    const top = layers[0];
    const rooted = spec && top ? { ...ctx, rootDir: dirname(top.path) } : ctx;
    await followBacking(layers, seen, rooted, options, messageName);
    return layers;
  } catch (err) {
    await Promise.allSettled(layers.map((l) => l.image.close()));
    throw err;
  }
}
