/**
 * create: a new image, validated and described (the `Formatting ...` line)
 * exactly as qemu-img does before anything is written.
 */
import { dirname } from 'node:path';

import { InvalidArgumentError, UnsupportedError, VdiskError } from '../core/errors.js';
import {
  optionTexts,
  parseOptionString,
  printOptionValue,
  typeOptions,
  type OptionSpec,
  type OptionValue,
  type RawOption,
} from '../core/options.js';
import { parseSize } from '../core/sizes.js';
import { alignUp } from '../core/bytes.js';
import type { OpenImageOptions } from '../block/chain.js';
import { isJsonName } from '../core/image-options.js';
import { BlockDevice } from '../block/device.js';
import { externalFiles } from '../block/external.js';
import { createdFiles } from '../block/create-files.js';
import { createProtocolOf } from '../block/create-protocol.js';
import { unwrapOpenError } from '../block/layer-open.js';
import { pathCombine } from '../block/path-combine.js';
import { checkOutputSpec } from '../block/target-check.js';
import { defaultRegistry, type DriverRegistry } from '../block/registry.js';
import type { ResolverOptions } from '../block/resolver.js';
import { NO_PROTOCOL_REQUEST, refuseUncreatable, type ProtocolCreate } from '../block/network-target.js';
import { prepareTarget, type OutputSpec, type OutputTarget } from '../block/target.js';
import type { ByteStore, FormatDriver } from '../block/types.js';
import type { CacheMode } from '../core/cache-mode.js';
import { throwIfAborted } from '../core/abort.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { isPassThroughFormat } from '../block/registry.js';

/** `-o` options as a string (`"cluster_size=64k,lazy_refcounts=on"`) or an object. */
export type CreateOptionInput = string | Readonly<Record<string, OptionValue>>;

/** Formats whose qemu create reads the options through a QAPI visitor (raw's passes them on to the file driver's; not file's, vmdk's or luks's). */
const REREADS_OPTIONS: ReadonlySet<string> = new Set(['qcow2', 'qcow', 'qed', 'vhdx', 'vpc', 'vdi', 'parallels', 'raw']);

/** Phases of {@link create}: `create` (bytes of the new image's virtual size). */
export type CreatePhase = 'create';

/** Options of {@link create}. */
export interface CreateOptions extends JobOptions<CreatePhase>, ResolverOptions, Pick<OpenImageOptions, 'onWarning' | 'locking' | 'network'> {
  /** Image format (default `raw`). */
  format?: string | undefined;
  /** Virtual size: bytes or a qemu-img size string. May be omitted with a backing file. */
  size?: number | string | undefined;
  /** Format options (`-o`); may be repeated as an array, later ones win. */
  options?: CreateOptionInput | readonly CreateOptionInput[] | undefined;
  /** Backing file (`-b`), recorded as given. */
  backingFile?: string | undefined;
  /** Backing file format (`-F`); required with `backingFile`, as in qemu-img ≥ 6.1. */
  backingFormat?: string | undefined;
  /** Do not open the backing file (`-u`); then `size` is required. */
  backingUnsafe?: boolean | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
  /**
   * Files (`dev:ino`) the new image may not write (its extents or data
   * file): they fail as qemu's write-lock conflict. Convert passes the files
   * its sources consist of.
   */
  refuse?: ReadonlySet<string> | undefined;
  /**
   * Image locks on the files written (see OpenImageOptions.locking). An
   * existing file is replaced or emptied only once its lock is taken; with
   * the default `true`, where locks are unavailable that fails, unless `false`.
   */
  locking?: OpenImageOptions['locking'];
  /**
   * Refuses any backing file (`-b` or `backing_file`) with this message,
   * once the options are parsed and before it is opened: convert
   * concatenating several sources.
   */
  refuseBacking?: string | undefined;
}

/** What {@link prepareCreate} settled on. */
export interface CreatePlan {
  /** The image to create (a store's name when the target is a store). */
  readonly filename: string;
  /** Its format. */
  readonly format: string;
  /** Its virtual size in bytes. */
  readonly size: number;
  /** The options in the driver's list order, with defaults, as printed. */
  readonly printedOptions: readonly (readonly [string, string])[];
  /** qemu-img's `Formatting 'x', fmt=... size=...` line. */
  readonly formatting: string;
  /** The image will also consist of files named after it (vmdk extents, data files). */
  readonly extraFiles: boolean;
  /**
   * Writes the image through `cache` (convert's `-t`; default `writeback`).
   * Into `target` when given (a job that goes on writing the image, then
   * commits or aborts it), else into its own target, committed here: a
   * single new file under a temporary name, renamed into place when
   * complete. On failure every file it created is removed.
   */
  execute(target?: OutputTarget, cache?: CacheMode): Promise<CreateResult>;
}

/** What {@link create} made. */
export interface CreateResult {
  /** The image created. */
  readonly filename: string;
  /** Its format. */
  readonly format: string;
  /** Its virtual size in bytes. */
  readonly size: number;
}

function toRaw(input: CreateOptionInput): RawOption[] {
  if (typeof input === 'string') return parseOptionString(input);
  return Object.entries(input).map(([key, v]) => ({ key, value: typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v) }));
}

function collectOptions(input: CreateOptions['options']): RawOption[] {
  if (input === undefined) return [];
  const list = Array.isArray(input) ? (input as readonly CreateOptionInput[]) : [input as CreateOptionInput];
  return list.flatMap(toRaw);
}

/**
 * The typed `-o` options for `driver`, as create parses them (for jobs that
 * plan an image without creating it).
 */
export function typedCreateOptions(registry: DriverRegistry, driver: FormatDriver, input: CreateOptions['options']): Map<string, OptionValue> {
  return typeOptions(registry.createOptions(driver), collectOptions(input));
}

/** The `Formatting` line's options: in the driver's list order, as given (qemu_opts_print), else defaults. */
function printed(specs: readonly OptionSpec[], texts: ReadonlyMap<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const spec of specs) {
    const text = texts.get(spec.name);
    if (text !== undefined) out.push([spec.name, printOptionValue(spec, text)]);
    else if (spec.default !== undefined) out.push([spec.name, spec.default]);
  }
  return out;
}

/**
 * Tags an error with the file being created, as qemu-img prefixes `x.qcow2: `.
 * The original error stays the `cause`, and `stage` says whether it came
 * from validation or from writing (convert words the two differently).
 */
function prefixed(filename: string, err: unknown, stage: 'validate' | 'create'): unknown {
  if (!(err instanceof VdiskError) || err.stage === 'validate' || err.stage === 'create') return err;
  return err.rephrase(`${filename}: ${err.message}`, { file: err.file ?? filename, offset: undefined, stage });
}

/**
 * Opens the new file with the cache mode it is written with. A cache mode
 * the file cannot have (no O_DIRECT there) fails as qemu-img convert reports
 * it for the target, under its final name rather than the temporary one.
 */
async function openCreated(target: OutputTarget, filename: string, cache: CacheMode | undefined, protocol: ProtocolCreate): Promise<ByteStore> {
  try {
    return await target.openMain(cache, protocol);
  } catch (err) {
    if (!(err instanceof VdiskError) || err.reason !== 'cache-mode-unavailable') throw err;
    // The store names the temporary file; qemu-img names the target.
    const why = err.message.replace(`Could not open '${err.file ?? filename}'`, `Could not open '${filename}'`);
    throw new UnsupportedError(`Could not open '${filename}': ${why}`, { file: filename, reason: err.reason, stage: 'create', data: err.data });
  }
}

function hasErrno(err: unknown, code: string): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if ((e as NodeJS.ErrnoException).code === code) return true;
  return false;
}

/**
 * qemu-img words any EFBIG from a format's create as the size being too
 * large for the format, hinting at the cluster size when the format has
 * one (bdrv_img_create).
 */
function tooLarge(err: unknown, format: string, specs: readonly OptionSpec[], values: ReadonlyMap<string, OptionValue>): VdiskError | undefined {
  if (!hasErrno(err, 'EFBIG')) return undefined;
  const clusterSize = values.get('cluster_size') ?? specs.find((s) => s.name === 'cluster_size')?.default;
  const hint = clusterSize !== undefined && Number(clusterSize) !== 0 ? ' (try using a larger cluster size)' : '';
  return new InvalidArgumentError(`The image size is too large for file format '${format}'${hint}`, { cause: err });
}

async function backingSize(filename: string, backing: string, format: string | undefined, opts: CreateOptions): Promise<number> {
  const path = pathCombine(filename, backing);
  let dev: BlockDevice;
  try {
    dev = await BlockDevice.open(path, { ...opts, format, readOnly: true, registry: opts.registry });
  } catch (err) {
    if (err instanceof VdiskError) {
      // bdrv_img_create reports the file's own error, without the open's `Could not open 'x':` wrapper.
      const inner = unwrapOpenError(path, err);
      throw err.rephrase(inner.message, { file: path, offset: undefined, data: undefined, hint: 'Could not open backing image.' });
    }
    throw err;
  }
  try {
    // qemu opens the backing file before it insists on its format, and says what it found.
    if (format === undefined) throw new InvalidArgumentError('Backing file specified without backing format', { hint: `Detected format of ${dev.format}.`, reason: 'backing-format-missing' });
    return dev.size;
  } finally {
    await dev.close();
  }
}

/**
 * Validates a create request and returns the plan without writing anything.
 * The target is a path, or a ByteStore the caller opened: that one is
 * emptied and written in place, and stays the caller's (never closed).
 *
 * @throws {UnknownFormatError} EFORMAT for an unknown format
 * @throws {InvalidArgumentError} EINVAL for bad options and sizes (qemu-img's messages, prefixed with the file name)
 */
export async function prepareCreate(output: OutputSpec, opts: CreateOptions = {}): Promise<CreatePlan> {
  checkOutputSpec(output);
  const filename = typeof output === 'string' ? output : output.name;
  const registry = opts.registry ?? defaultRegistry;
  const format = opts.format ?? 'raw';
  try {
    const driver = registry.get(format);
    if (!driver.create) throw new UnsupportedError(`Format driver '${format}' does not support image creation`);
    // A `json:` name opens an existing image; nothing can be created through it (qemu: no such protocol).
    if (typeof output === 'string' && isJsonName(filename)) throw new UnsupportedError("Unknown protocol 'json'");
    if (typeof output === 'string') refuseUncreatable(filename);
    const optionProtocol = await createProtocolOf(output);
    const specs = registry.createOptions(driver, true, optionProtocol);
    const raw = collectOptions(opts.options);
    const values = typeOptions(specs, raw);
    const texts = optionTexts(raw);
    // What qemu-img sets itself (bdrv_img_create's qemu_opt_set calls) prints like what the user gave.
    const set = (key: string, value: string | number): void => {
      values.set(key, value);
      texts.set(key, String(value));
    };
    if (opts.size !== undefined) {
      if (values.has('size')) throw new InvalidArgumentError('The image size must be specified only once');
      set('size', parseSize(opts.size));
    }
    if (opts.backingFile !== undefined) {
      if (!specs.some((s) => s.name === 'backing_file')) throw new InvalidArgumentError(`Backing file not supported for file format '${format}'`);
      set('backing_file', opts.backingFile);
    }
    if (opts.backingFormat !== undefined) {
      if (!specs.some((s) => s.name === 'backing_fmt')) throw new InvalidArgumentError(`Backing file format not supported for file format '${format}'`);
      set('backing_fmt', opts.backingFormat);
    }
    const backingFile = values.get('backing_file') as string | undefined;
    const backingFormat = values.get('backing_fmt') as string | undefined;
    if (backingFile !== undefined) {
      if (opts.refuseBacking !== undefined) throw new InvalidArgumentError(opts.refuseBacking);
      // bdrv_img_create's order; img_convert, which does not go through it, asks for the format
      // first (convert rewords errors that carry `formatMissing`).
      const formatMissing = opts.backingUnsafe === true && backingFormat === undefined;
      if (pathCombine(filename, backingFile) === filename || backingFile === filename) {
        throw new InvalidArgumentError('Error: Trying to create an image with the same filename as the backing file', { data: { formatMissing } });
      }
      if (backingFile === '') throw new InvalidArgumentError('Expected backing file name, got empty string', { data: { formatMissing } });
      if (formatMissing) throw new InvalidArgumentError('Backing file specified without backing format', { reason: 'backing-format-missing' });
      if (!opts.backingUnsafe) {
        const size = await backingSize(filename, backingFile, backingFormat, opts);
        if (!values.has('size')) set('size', size);
      }
    }
    const size = values.get('size');
    if (typeof size !== 'number') throw new InvalidArgumentError('Image creation needs a size parameter');
    const printedOptions = printed(specs, texts);
    const formatting = `Formatting '${filename}', fmt=${format} ${printedOptions.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    const extraFiles = driver.createsExtraFiles?.(values) ?? values.has('data_file');
    const execute = async (given?: OutputTarget, cache?: CacheMode): Promise<CreateResult> => {
      const target = given ?? prepareTarget(output, { multiFile: extraFiles, locking: opts.locking, refuse: opts.refuse, network: networkOf(opts) });
      // raw passes its size and preallocation on to the protocol (qemu's raw_co_create_opts); other formats pass neither.
      const protocol: ProtocolCreate = isPassThroughFormat(format) ? { size: alignUp(size, 512), preallocation: String(values.get('preallocation') ?? 'off') } : NO_PROTOCOL_REQUEST;
      try {
        // As in qemu: the file is created (and its lock taken) first, then the driver checks its options.
        const store = await openCreated(target, filename, cache, protocol);
        let cleanupFiles: (() => Promise<void>) | undefined;
        try {
          if (extraFiles) await target.holdForFormat();
          // qemu's drivers that take their options through QAPI read the -o text a second time, once the file
          // exists: a deprecated size spelling is reported again.
          if (REREADS_OPTIONS.has(format)) typeOptions(specs, raw);
          registry.validateCreate(driver, size, values, optionProtocol);
          // The image records its final name (vmdk descriptors name their own file), wherever it is written first.
          const onCreate = (path: string, created: boolean): void => target.noteFile(path, created);
          // Data files that cannot be made are worded as qemu's create words them ("Could not create").
          const files = createdFiles(externalFiles(target.path, dirname(target.path), { ...opts, cache, onCreate }), target.path, opts.onWarning);
          try {
            // On an export, raw's create is the protocol's, done by the open.
            if (!(target.network && isPassThroughFormat(format))) await driver.create!(store, { size, options: values, filename, external: files.external, secrets: opts.secrets });
            await store.flush();
          } catch (err) {
            cleanupFiles = files.cleanup;
            throw err;
          }
        } catch (err) {
          await store.close().catch(() => undefined);
          // qcow2's create deletes the image, then its data file (qemu reports one that is already gone).
          if (!given) await target.abort();
          await cleanupFiles?.();
          throw err;
        }
        await store.close();
        // A cancelled create leaves nothing behind; past this point it has happened.
        throwIfAborted(opts.signal);
        if (!given) await target.commit();
      } catch (err) {
        if (!given) await target.abort();
        throw prefixed(filename, tooLarge(err, format, specs, values) ?? err, 'create');
      }
      return { filename, format, size };
    };
    return { filename, format, size, printedOptions, formatting, extraFiles, execute };
  } catch (err) {
    throw prefixed(filename, err, 'validate');
  }
}

/** The network settings of a job, its signal included. */
export function networkOf(opts: Pick<CreateOptions, 'network' | 'signal'>): CreateOptions['network'] {
  return { ...opts.network, signal: opts.network?.signal ?? opts.signal };
}

async function runCreate(output: OutputSpec, opts: CreateOptions, ctx: JobContext<CreatePhase>): Promise<CreateResult> {
  const plan = await prepareCreate(output, { ...opts, signal: ctx.signal });
  ctx.progress.phase('create', plan.size);
  const result = await plan.execute();
  ctx.progress.finish();
  return result;
}

/**
 * Creates an image, as `qemu-img create` does. Returns a job: await it, or
 * cancel it with its `signal` option or `job.cancel()`.
 *
 * @param target - a path (a new single file is written under a temporary
 *   name and renamed into place when complete), or a ByteStore the caller
 *   opened: it is emptied and written in place, and stays the caller's to
 *   close; a failed create leaves it as far as it got; or the URL of an
 *   NBD export (`nbd://host/x`, `nbd+unix:///x?socket=path`), written in
 *   place as qemu-img writes it (refused when the image is larger than the
 *   export; the first sector is zeroed; nothing is removed on failure)
 * @example
 * ```ts
 * await create('disk.qcow2', { format: 'qcow2', size: '10G', options: { cluster_size: 65536 } });
 * const store = new MemoryStore('scratch');
 * await create(store, { format: 'qcow2', size: '64M' });
 * ```
 * @throws {InvalidArgumentError} EINVAL, {@link UnknownFormatError} EFORMAT, {@link NotFoundError} ENOENT (backing file),
 *   {@link UnsupportedError} EUNSUPPORTED for an image of several files (a data file, vmdk extents) into a store
 */
export function create(target: OutputSpec, opts: CreateOptions = {}): Job<CreateResult, CreatePhase> {
  return new Job((ctx) => runCreate(target, opts, ctx), opts);
}
