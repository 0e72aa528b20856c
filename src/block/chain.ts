/**
 * Opening an image and its backing chain: iteratively (never recursively),
 * with loop detection by device and inode, a depth cap, and every backing
 * reference passed through the resolver before anything is opened.
 */
import { dirname } from 'node:path';

import { BackingLoopError, ChainDepthError, InvalidArgumentError, UnknownFormatError, VdiskError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { ByteStore, FormatDriver, FormatImage } from '../formats/driver.js';
import { externalFiles } from './external.js';
import type { CacheMode } from '../io/cache-mode.js';
import { FileStore } from '../io/file-store.js';
import type { Layer } from './layer.js';
import { layerAtSnapshot, type SnapshotSelector } from './snapshot-layer.js';
import { pathCombine } from './path-combine.js';
import { probeStore } from './probe.js';
import { defaultRegistry, type DriverRegistry } from './registry.js';
import { assertRegularFile, resolveReference, type ResolverOptions } from './resolver.js';

/** How to open an image. */
export interface OpenImageOptions extends ResolverOptions {
  /** The image's format; probed when omitted (raw is the fallback). */
  readonly format?: string | undefined;
  /** Open read-only (the default) or for writing. */
  readonly readOnly?: boolean | undefined;
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
   * io/cache-mode.ts). Its data files and extents use it too, as in qemu.
   */
  readonly cache?: CacheMode | undefined;
  /** Cache mode of the backing files (`-T` where a command has one); default `cache`, as qemu's backing files inherit it. */
  readonly backingCache?: CacheMode | undefined;
  /**
   * issue 9 (convert -l): open the top image at this internal snapshot,
   * read-only (`{id}`, `{name}`, both, or a string tried as ID then name).
   */
  readonly snapshot?: SnapshotSelector | undefined;
}

/** qemu-img's warning for a writable open of a probed raw image (the CLI prints it to stderr as is). */
export function probedRawWarning(filename: string): string {
  return (
    `WARNING: Image format was not specified for '${filename}' and probing guessed raw.\n` +
    '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n' +
    "         Specify the 'raw' format explicitly to remove the restrictions."
  );
}

interface OpenContext {
  readonly registry: DriverRegistry;
  readonly options: OpenImageOptions;
  readonly rootDir: string;
}

async function openLayer(
  store: ByteStore,
  filename: string,
  format: string | undefined,
  readOnly: boolean,
  ctx: OpenContext,
): Promise<Layer> {
  let driver: FormatDriver;
  let probedRaw = false;
  if (format !== undefined) {
    const d = ctx.registry.find(format);
    if (!d) throw new UnknownFormatError(`Unknown driver '${format}'`, { data: { format } });
    driver = d;
  } else {
    const found = await probeStore(store, filename, ctx.registry);
    if (!found) throw new UnknownFormatError(`Could not determine the format of '${filename}'`);
    driver = found.driver;
    probedRaw = driver.name === 'raw';
  }
  const extra: ByteStore[] = [];
  let image: FormatImage;
  try {
    // External files (data file, extents) share the cache mode of the file that names them.
    const cache = store instanceof FileStore ? store.cache : ctx.options.cache;
    const external = externalFiles(filename, ctx.rootDir, { ...ctx.options, cache }, extra);
    image = await driver.open(store, { readOnly, filename, external, check: ctx.options.check, onWarning: ctx.options.onWarning });
  } catch (err) {
    await Promise.allSettled(extra.map((s) => s.close()));
    throw err;
  }
  const backing = image.backing;
  return {
    image,
    filename,
    format: driver.name,
    probedRaw,
    backing,
    backingPath: backing ? pathCombine(filename, backing.filename) : undefined,
  };
}

/** Wraps an open failure the way qemu-img words it: `Could not open 'x': <why>`. */
export function openError(filename: string, err: unknown): unknown {
  if (!(err instanceof VdiskError)) return err;
  const prefix = `Could not open '${filename}': `;
  const wrapped = new (err.constructor as new (m: string, d: object) => VdiskError)(prefix + err.message, {
    file: err.file ?? filename,
    offset: err.offset,
    cause: err,
    data: err.data,
    hint: err.hint,
  });
  return wrapped;
}

/** qemu's wording for a backing file that fails to open: `Could not open 'top': Could not open backing file: ...`. */
function backingError(referrer: string, err: unknown): unknown {
  if (!(err instanceof VdiskError)) return err;
  const Ctor = err.constructor as new (m: string, d: object) => VdiskError;
  return openError(referrer, new Ctor(`Could not open backing file: ${err.message}`, { file: err.file, cause: err, data: err.data, hint: err.hint }));
}

/**
 * Opens `path` (or `store`) and, unless disabled, its whole backing chain.
 * Layers come back top first. On any error everything opened is closed.
 */
export async function openChain(target: string | ByteStore, options: OpenImageOptions = {}): Promise<Layer[]> {
  const registry = options.registry ?? defaultRegistry;
  const readOnly = options.readOnly ?? true;
  const topName = typeof target === 'string' ? target : target.name;
  const ctx: OpenContext = { registry, options, rootDir: dirname(typeof target === 'string' ? target : '.') };
  const maxDepth = options.maxChainDepth ?? LIMITS.maxChainDepth;
  if (options.forceShare && !readOnly) throw new InvalidArgumentError('force-share=on can only be used with read-only images');
  const layers: Layer[] = [];
  const seen = new Map<string, string>();
  try {
    let store: ByteStore;
    try {
      store = typeof target === 'string' ? await FileStore.open(target, { readOnly, allowDevices: options.allowDevices, cache: options.cache }) : target;
    } catch (err) {
      throw openError(topName, err);
    }
    const id = store.identity?.();
    if (id) seen.set(`${id.dev}:${id.ino}`, topName);
    try {
      await store.lock?.({ write: !readOnly, shareAll: options.forceShare === true });
    } catch (err) {
      await store.close();
      throw openError(topName, err);
    }
    try {
      layers.push(await openLayer(store, topName, options.format, readOnly, ctx));
    } catch (err) {
      await store.close();
      throw openError(topName, err);
    }
    if (!readOnly && layers[0]?.probedRaw) options.onWarning?.({ code: 'probed-raw', message: probedRawWarning(topName) });
    // issue 9 (convert -l): read the top image at an internal snapshot instead of its current state.
    if (options.snapshot !== undefined && layers[0]) layers[0] = await layerAtSnapshot(layers[0], options.snapshot);
    if (options.backing === false) return layers;
    for (;;) {
      const top = layers[layers.length - 1];
      if (!top?.backing || !top.backingPath) break;
      const name = top.backing.filename;
      if (layers.length > maxDepth) {
        throw new ChainDepthError(
          `Backing chain of '${topName}' is deeper than ${maxDepth} images (at '${top.filename}'); raise the limit with the maxChainDepth option (CLI: --max-chain-depth) if the chain is genuine`,
          { file: top.filename, data: { maxChainDepth: maxDepth } },
        );
      }
      const path = await resolveReference(name, top.filename, 'backing file', ctx.rootDir, options);
      const ident = await assertRegularFile(path, 'backing file');
      const key = `${ident.dev}:${ident.ino}`;
      if (seen.has(key)) {
        throw new BackingLoopError(`Backing file '${name}' creates an infinite loop.`, { file: top.filename, data: { backing: name } });
      }
      seen.set(key, path);
      const shown = top.backingPath;
      const rw = options.writableDepth === layers.length;
      let bstore: ByteStore;
      try {
        bstore = await FileStore.open(path, { readOnly: !rw, cache: options.backingCache ?? options.cache });
      } catch (err) {
        throw backingError(top.filename, openError(shown, err));
      }
      try {
        await bstore.lock?.({ write: rw, shareAll: options.forceShare === true });
        layers.push(await openLayer(bstore, shown, top.backing.format, !rw, ctx));
      } catch (err) {
        await bstore.close();
        throw backingError(top.filename, openError(shown, err));
      }
    }
    return layers;
  } catch (err) {
    await Promise.allSettled(layers.map((l) => l.image.close()));
    throw err;
  }
}
