/**
 * convert: copy one or more images (concatenated) into a new or existing
 * target of any writable format. A new single-file target is written under
 * a temporary name beside it and renamed into place only when complete, so
 * an interrupted convert never leaves a plausible half image behind.
 */

import { InvalidArgumentError, UnsupportedError, VdiskError } from '../core/errors.js';
import { QDict } from '../core/qdict.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import { isImageOptions, targetName, type ImageTarget, type OpenImageOptions } from '../block/chain.js';
import type { SnapshotSelector } from '../block/snapshot-layer.js';
import type { ResolverOptions } from '../block/resolver.js';
import type { IngestPolicy } from '../block/ingest-policy.js';
import { checkImageTarget } from '../block/target-check.js';
import { defaultRegistry, type DriverRegistry } from '../block/registry.js';
import { filesRead, openExistingTarget, prepareTarget, type OutputSpec, type OutputTarget } from '../block/target.js';
import { cacheModeNamed, parseCacheMode, type CacheMode } from '../core/cache-mode.js';
import { copyImage, type CopyCounters, type CopySettings } from './copy-loop.js';
import { digestAlgorithm, OrderedDigest, type DigestAlgorithm } from './content-digest.js';
import { checkSourceBitmaps, checkTargetBitmaps, copyBitmaps } from './convert-bitmaps.js';
import { networkOf, prepareCreate, type CreateOptionInput, type CreateOptions, type CreatePlan } from './create.js';

/** Phases of {@link convert}: `copy` (the data, in bytes of the virtual size). */
export type ConvertPhase = 'copy';

/** Options of {@link convert}. */
export interface ConvertOptions extends JobOptions<ConvertPhase>, ResolverOptions, Pick<OpenImageOptions, 'onWarning' | 'locking' | 'network'> {
  /** Format of every source (`-f`); probed when omitted. */
  sourceFormat?: string | undefined;
  /** Target format (`-O`, default `raw`). */
  targetFormat?: string | undefined;
  /** Target create options (`-o`). */
  options?: CreateOptionInput | readonly CreateOptionInput[] | undefined;
  /** Backing file of the new target (`-B`); only what the source's top layer allocates is copied. */
  backingFile?: string | undefined;
  /** Format of `backingFile` (`-F`). */
  backingFormat?: string | undefined;
  /** Compress the target's clusters (`-c`). */
  compress?: boolean | undefined;
  /** Minimum zero run (bytes) left sparse (`-S`, default 4096; 0 = fully allocated). */
  sparseSize?: number | undefined;
  /** Write into an existing target instead of creating one (`-n`). */
  noCreate?: boolean | undefined;
  /** Assume the existing target reads as zeros (`--target-is-zero`, needs `noCreate`). */
  targetIsZero?: boolean | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
  /** Most backing files below each source (default 256). */
  maxChainDepth?: number | undefined;
  /** Read the sources even while another process writes them (qemu-img -U). */
  forceShare?: boolean | undefined;
  /** Requests in flight (`-m`, 1..16, default 8). */
  parallel?: number | undefined;
  /** Let writes complete out of order (`-W`). */
  outOfOrder?: boolean | undefined;
  /** Write at most this many bytes per second (`-r`). */
  rateLimit?: number | undefined;
  /** Read errors become zeros, each reported as a `warning` event (`--salvage`). */
  salvage?: boolean | undefined;
  /**
   * Read the (single) source at this internal snapshot (`-l`): `{id}`,
   * `{name}`, both, or a string tried as ID, then as name.
   */
  snapshot?: SnapshotSelector | undefined;
  /** Copy data inside the kernel with copy_file_range where possible (`-C`). */
  copyOffload?: boolean | undefined;
  /**
   * Inflate compressed or zipped (gzip, zstd, bzip2, zip) sources (`disk.img.gz`) into a private
   * temporary file before reading them (default true; only when
   * `sourceFormat` is not given). See OpenImageOptions.unwrap.
   */
  unwrap?: boolean | undefined;
  /** What the sources must satisfy (see OpenImageOptions.policy); the target is the caller's own and is not judged by it. */
  policy?: IngestPolicy | undefined;
  /** Copy the top source layer's persistent bitmaps into the target (`--bitmaps`, qcow2 v3 targets). */
  bitmaps?: boolean | undefined;
  /** With `bitmaps`, skip inconsistent (in-use) bitmaps with a warning instead of failing (`--skip-broken-bitmaps`). */
  skipBrokenBitmaps?: boolean | undefined;
  /**
   * Cache mode of the target (`-t`; default `writeback`: vdisk flushes the
   * target where qemu-img convert defaults to `unsafe`). `none`/`directsync`
   * write with O_DIRECT. Another name (`off` is `none`) fails with EINVAL
   * ("Invalid cache option: x") where qemu-img checks `-t`: after the sources
   * are opened and the target created (and removed again).
   */
  targetCache?: CacheMode | 'off' | undefined;
  /** Cache mode of the sources and their backing files (`-T`; default `writeback`). */
  sourceCache?: CacheMode | undefined;
  /**
   * Also compute this digest of the guest-visible content while copying (no
   * second pass): `result.digest` equals `sha256sum` of the image converted
   * to raw. Not with a backing file or copy offload (the copy skips reading
   * those bytes).
   */
  digest?: DigestAlgorithm | undefined;
  /** Smallest part of a multipart upload to an `s3://` target (default 8 MiB, at least 5 MiB; raised to stay within 10 000 parts). */
  uploadPartSize?: number | undefined;
  /**
   * Write an image a cloud accepts (`--preset`): `azure`, `aws`, `esxi`,
   * `gce`, `openstack`, `kubevirt` or `ova`. The preset sets the format,
   * the create options and the size rounding (giving those too is an
   * error), checks the source against the cloud's limits before writing,
   * and checks the result by the rules `validate` applies. `gce` writes a
   * `.tar.gz` holding `disk.raw`, `ova` a tar holding an OVF descriptor, a
   * stream-optimized VMDK and a manifest.
   */
  preset?: string | undefined;
  /** Virtual size of a new target, at least the sources' total (the rest reads as zeros); default the total. */
  targetSize?: number | undefined;
}

/** What {@link convert} did. */
export interface ConvertResult {
  /** The target's name. */
  readonly target: string;
  /** Its format. */
  readonly format: string;
  /** Its virtual size. */
  readonly size: number;
  /** Bytes written as data. */
  readonly dataBytes: number;
  /** Bytes written as explicit zeros. */
  readonly zeroBytes: number;
  /** `ALGORITHM:HEX` of the guest-visible content, when `digest` asked for it. */
  readonly digest?: string | undefined;
}

const DEFAULT_SPARSE = 4096;
const CONCAT_BACKING = 'Having a backing file for the target makes no sense when concatenating multiple input images';
const BUFFER_SIZE = 2 * 1024 * 1024;
/** The formats whose qemu driver writes compressed clusters (the target image is asked again once open). */
const COMPRESSING_DRIVERS: ReadonlySet<string> = new Set(['qcow2', 'qcow', 'vmdk']);

function validate(sources: readonly Source[], opts: ConvertOptions): number {
  if (sources.length === 0) throw new InvalidArgumentError('Must specify image file name');
  const sparse = opts.sparseSize ?? DEFAULT_SPARSE;
  if (!Number.isSafeInteger(sparse) || sparse < 0 || sparse % 512 !== 0 || sparse > 16 * 1024 * 1024) {
    throw new InvalidArgumentError('Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16MB.');
  }
  if (opts.skipBrokenBitmaps && !opts.bitmaps) throw new InvalidArgumentError('skipBrokenBitmaps requires bitmaps');
  if (opts.targetIsZero && !opts.noCreate) throw new InvalidArgumentError('targetIsZero requires noCreate', { reason: 'target-is-zero-needs-no-create' });
  if (opts.noCreate && opts.options !== undefined) throw new InvalidArgumentError('Create options have no effect with noCreate', { reason: 'options-with-no-create' });
  // -l reads one snapshot: qemu-img cannot concatenate snapshots of several images.
  if (opts.snapshot !== undefined && sources.length > 1) throw new InvalidArgumentError('No support for concatenating multiple snapshot');
  if (opts.copyOffload && opts.compress) throw new InvalidArgumentError('copyOffload cannot be used with compress');
  if (opts.copyOffload && opts.salvage) throw new InvalidArgumentError('Cannot use copy offloading in salvaging mode');
  if (opts.digest !== undefined) digestAlgorithm(opts.digest);
  if (opts.digest !== undefined && opts.backingFile !== undefined) throw new InvalidArgumentError('digest cannot be used with a backing file: the copy leaves what the backing file holds unread');
  if (opts.digest !== undefined && opts.copyOffload) throw new InvalidArgumentError('digest cannot be used with copyOffload: the kernel copies those bytes unseen');
  const m = opts.parallel ?? 8;
  if (!Number.isInteger(m) || m < 1 || m > 16) {
    throw new InvalidArgumentError('Invalid number of coroutines. Allowed number of coroutines is between 1 and 16');
  }
  return sparse;
}

function optionList(input: CreateOptions['options']): CreateOptionInput[] {
  if (input === undefined) return [];
  return Array.isArray(input) ? [...(input as readonly CreateOptionInput[])] : [input as CreateOptionInput];
}

/** img_convert checks the backing format itself, before anything else about the backing file, in its own words. */
function convertWording(err: VdiskError): VdiskError {
  if (err.reason !== 'backing-format-missing' && err.data?.['formatMissing'] !== true) return err;
  return new InvalidArgumentError('Use of backing file requires explicit backing format', { cause: err, reason: err.reason });
}

/** Validates the target's create options; errors read as qemu-img convert words them. */
async function planTarget(target: OutputSpec, opts: CreateOptions & { format: string }): Promise<CreatePlan> {
  try {
    return await prepareCreate(target, opts);
  } catch (err) {
    if (err instanceof VdiskError && err.cause instanceof VdiskError && err.stage === 'validate') throw convertWording(err.cause);
    throw err;
  }
}

/** Creates the target's files, with qemu-img convert's wording for failures. */
async function executeTarget(plan: CreatePlan, output: OutputTarget, target: string, cache: CacheMode | undefined): Promise<void> {
  try {
    await plan.execute(output, cache);
  } catch (err) {
    if (!(err instanceof VdiskError) || !(err.cause instanceof VdiskError)) throw err;
    throw err.rephrase(`${target}: error while converting ${plan.format}: ${convertCreateWords(err.cause)}`, { file: target, cause: err.cause, offset: undefined, data: undefined });
  }
}

/**
 * qemu-img create words a file too large for the file system (EFBIG) as the
 * image size being too large for the format (bdrv_img_create); convert
 * creates through bdrv_create, which passes on the drivers' own words:
 * `Could not resize file: File too large`, `Could not write refcount table:
 * File too large`, `Could not resize image: …`. A store's error that names
 * vdisk's temporary file keeps create's words.
 */
function convertCreateWords(err: VdiskError): string {
  const original = err.cause;
  if (!(original instanceof VdiskError) || !err.message.startsWith('The image size is too large for file format')) return err.message;
  const resize = /^Could not resize '.*?': (.*)$/s.exec(original.message);
  if (resize) return `Could not resize file: ${resize[1] as string}`;
  return /^Could not (write|read) '/.test(original.message) ? err.message : original.message;
}

/** The key secrets the create options name, as `[key, id]` open options. */
function keySecrets(plan: CreatePlan): [string, string][] {
  const keys = plan.printedOptions.filter(([k]) => k === 'key-secret' || k.endsWith('encrypt.key-secret'));
  return keys.map(([k, v]) => [k, v.replaceAll(',,', ',')]);
}

/**
 * How to open the target after creating it: its path, or, when the create
 * options name key secrets, image options carrying them, as qemu-img's
 * img_add_key_secrets hands them to the new image's open. A store target
 * is opened itself, the key secrets as its open options.
 */
function writtenTarget(output: OutputTarget, format: string, plan: CreatePlan): Pick<OpenImageOptions, 'format' | 'runtime'> & { spec: ImageTarget } {
  const keys = keySecrets(plan);
  const image = output.image;
  if (typeof image !== 'string') return { spec: image, format, runtime: keys.length > 0 ? keys : undefined };
  if (keys.length === 0) return { spec: image, format };
  const options = new QDict().set('driver', format).set('file.driver', 'file').set('file.filename', image);
  for (const [k, v] of keys) options.set(k, v);
  return { spec: { text: image, options, warnings: [] }, format: undefined };
}

/** Opens the target written under a temporary name: errors name the target, as qemu-img's do (it has no temporary file). */
async function openWritten(spec: ImageTarget, path: string, target: string, options: OpenImageOptions): Promise<BlockDevice> {
  try {
    return await BlockDevice.open(spec, options);
  } catch (err) {
    if (!(err instanceof VdiskError) || path === target) throw err;
    const name = (text: string): string => text.split(path).join(target);
    throw err.rephrase(name(err.message), { file: err.file === undefined ? undefined : name(err.file), hint: err.hint === undefined ? undefined : name(err.hint) });
  }
}

/**
 * Whether a new image reads as zeros whatever its file held: a format that
 * allocated nothing (qcow2_has_zero_init looks at the first L2 table only;
 * raw and preallocated images are allocated and take the file's answer).
 */
async function ownZeroInit(dev: BlockDevice): Promise<boolean> {
  return dev.size > 0 && !(await dev.topStatus(0, dev.size)).present;
}

/**
 * How the copy treats the target, as qemu-img convert decides it: with a
 * backing file (`-B`, or `backing_file` in the create options) only what
 * each source's top layer holds is copied, the rest is left to the backing
 * file, and zeros past the backing file's end are not written; without one,
 * a new image on a regular file reads as zeros, so zeros are not written.
 */
async function targetState(dev: BlockDevice, output: OutputTarget | undefined, opts: ConvertOptions): Promise<Pick<CopySettings, 'targetIsZero' | 'targetHasBacking' | 'statusAbove' | 'backingEnd'>> {
  const targetHasBacking = opts.backingFile !== undefined || (!opts.noCreate && dev.top.backing !== undefined);
  const backingSize = dev.sizeAt(1);
  const zeroInit = output === undefined || (await output.readsAsZeros()) || (output.network && (await ownZeroInit(dev)));
  return {
    targetHasBacking,
    targetIsZero: opts.noCreate ? opts.targetIsZero === true : !targetHasBacking && zeroInit && !dev.noZeroInit,
    statusAbove: targetHasBacking ? 1 : undefined,
    // qemu counts the backing file in whole sectors.
    backingEnd: targetHasBacking && !opts.noCreate && backingSize !== undefined ? Math.ceil(backingSize / 512) * 512 : undefined,
  };
}

/** A source: a path (`json:{...}` included), a ByteStore the caller opened (and closes: the job only borrows it), or parsed image options (`--image-opts`). */
export type Source = ImageTarget;

async function runConvert(sourceNames: readonly Source[], targetSpec: ImageTarget, opts: ConvertOptions, ctx: JobContext<ConvertPhase>): Promise<ConvertResult> {
  for (const source of sourceNames) checkImageTarget(source, 'source');
  checkImageTarget(targetSpec, 'target');
  const sparseSize = validate(sourceNames, opts);
  // An s3:// target is streamed and uploaded (jobs/convert-s3.ts, loaded only for such names).
  if (typeof targetSpec === 'string' && /^s3:\/\//i.test(targetSpec) && !opts.noCreate) return (await import('./convert-s3.js')).convertToS3(sourceNames, targetSpec, opts, ctx);
  const target = targetName(targetSpec);
  // Options name an existing image only: a new target is a path or a store.
  const newTarget: OutputSpec | undefined = isImageOptions(targetSpec) ? undefined : targetSpec;
  if (newTarget === undefined && !opts.noCreate) throw new InvalidArgumentError('A target given as image options requires noCreate');
  const registry = opts.registry ?? defaultRegistry;
  // Nothing may write the sources while they are copied (qemu-img convert's BDRV_O_NO_SHARE).
  // Wrapped sources are inflated privately by the open (block/unwrap.ts), never beside the target.
  const openOpts: OpenImageOptions = { ...opts, format: opts.sourceFormat, readOnly: true, registry, cache: opts.sourceCache, noShare: true, signal: ctx.signal };
  // The target is the caller's own file: the ingest policy judges the sources only.
  const targetOpts: ConvertOptions = { ...opts, policy: undefined };
  // -t is checked where img_convert checks it: after the target is created, before it is opened (a
  // bad one leaves no file: the created one is removed). The create itself then uses the default.
  const cacheName: string | undefined = opts.targetCache;
  const createCache = cacheName === undefined ? undefined : cacheModeNamed(cacheName);
  const targetCacheMode = (): CacheMode | undefined => (cacheName === undefined ? undefined : parseCacheMode(cacheName, 'cache'));
  const sources: BlockDevice[] = [];
  let dev: BlockDevice | undefined;
  let output: OutputTarget | undefined;
  try {
    for (const name of sourceNames) {
      sources.push(await BlockDevice.open(name, openOpts));
    }
    const total = sources.reduce((n, s) => n + s.size, 0);
    // qemu-img 7.2 prints this and exits 0 without copying; vdisk fails (exit 1).
    if (opts.targetIsZero && opts.backingFile !== undefined) throw new InvalidArgumentError('targetIsZero cannot be used when the destination image has a backing file', { reason: 'target-is-zero-with-backing' });
    if (opts.noCreate && opts.backingFile !== undefined && sources.length > 1) throw new InvalidArgumentError(CONCAT_BACKING);
    const format = opts.targetFormat ?? 'raw';
    // The target's own files (extents, data file) may not be files the sources read either.
    const refuse = await filesRead(sources, sourceNames);
    // --bitmaps: refused before anything is written, where img_convert checks it (after the create options).
    const checkBitmaps = (): void => {
      if (opts.bitmaps) checkSourceBitmaps(sources, opts.skipBrokenBitmaps === true);
    };
    if (opts.noCreate || newTarget === undefined) {
      checkBitmaps();
      const given = isImageOptions(targetSpec) ? undefined : format;
      dev = await openExistingTarget(targetSpec, { ...targetOpts, format: given, registry, forceShare: false, noShare: false, snapshot: undefined, refuse, cache: targetCacheMode(), backingCache: opts.sourceCache });
      if (dev.size < total) throw new InvalidArgumentError('output file is smaller than input file', { file: target, data: { targetSize: dev.size, sourceSize: total } });
    } else {
      // Quiet otherwise: qemu-img convert creates without opening -B's file; the target's open below reports it.
      // The sources' size replaces any `-o size=`, as in qemu-img (it sets the option last).
      if (opts.targetSize !== undefined && !(Number.isSafeInteger(opts.targetSize) && opts.targetSize >= total)) throw new InvalidArgumentError('targetSize must be at least the sources\' virtual size');
      const options = [...optionList(opts.options), { size: opts.targetSize ?? total }];
      // Only the create's own error reports (a data file it could not delete again) reach the user.
      const onWarning: ConvertOptions['onWarning'] = (w) => (w.code === 'error-report' ? opts.onWarning?.(w) : undefined);
      // qemu-img refuses a backing file (-B or -o) for several sources once the options are parsed.
      const refuseBacking = sources.length > 1 ? CONCAT_BACKING : undefined;
      // Like img_convert, the target is created without opening the backing file (the target's own open, or the driver, reports it).
      const plan = await planTarget(newTarget, { ...targetOpts, onProgress: undefined, format, size: undefined, options, registry, refuse, onWarning, refuseBacking, backingUnsafe: true });
      const prealloc = plan.printedOptions.find(([k]) => k === 'preallocation')?.[1];
      const encrypted = plan.printedOptions.some(([k, v]) => k === 'encrypt.format' || (k === 'encryption' && v === 'on'));
      // img_convert asks the format driver first (block_driver_can_compress), then the options.
      if (opts.compress && !COMPRESSING_DRIVERS.has(plan.format)) throw new InvalidArgumentError('Compression not supported for this file format');
      if (opts.compress && encrypted) throw new UnsupportedError('Compression and encryption not supported at the same time');
      if (opts.compress && prealloc !== undefined && prealloc !== 'off') throw new InvalidArgumentError('Compression and preallocation not supported at the same time');
      checkBitmaps();
      // A single new regular file is written under a temporary name and renamed when complete;
      // multi-file images, symlinks and devices are written in place, as qemu-img does (block/target.ts).
      // A store is the caller's: written in place, never renamed, removed or closed.
      output = prepareTarget(newTarget, { multiFile: plan.extraFiles, locking: opts.locking, refuse, network: networkOf({ ...opts, signal: ctx.signal }) });
      await executeTarget(plan, output, target, createCache);
      const cache = targetCacheMode();
      const { spec: written, ...how } = writtenTarget(output, format, plan);
      dev = await openWritten(written, output.path, target, { ...targetOpts, ...how, readOnly: false, registry, forceShare: false, snapshot: undefined, locking: output.locking, cache, backingCache: opts.sourceCache });
    }
    if (opts.bitmaps) checkTargetBitmaps(dev, format); // --bitmaps: the target must be able to store them
    const unit = dev.granularity;
    if (opts.compress && !dev.canCompress) {
      throw new InvalidArgumentError(`Compression not supported for this file format`);
    }
    if (opts.compress) {
      // qemu-img compresses whole clusters of at most one buffer: no cluster (flat vmdk) or a larger one is refused.
      const clusterSize = (await dev.describe()).clusterSize ?? 0;
      if (clusterSize <= 0 || clusterSize > BUFFER_SIZE) throw new InvalidArgumentError('invalid cluster size');
    }
    const settings = {
      sparseSize,
      ...(await targetState(dev, output, opts)),
      compress: opts.compress === true,
      unit,
      bufferSize: BUFFER_SIZE,
      parallel: opts.parallel ?? 8,
      ordered: opts.outOfOrder !== true,
      rateLimit: opts.rateLimit ?? 0,
      copyOffload: opts.copyOffload === true,
      salvage: opts.salvage ? (message: string) => ctx.warn({ code: 'salvage', message }) : undefined,
      signal: ctx.signal,
      progress: ctx.progress,
    };
    const counters: CopyCounters = { dataBytes: 0, zeroBytes: 0 };
    if (opts.digest !== undefined && settings.targetHasBacking) throw new InvalidArgumentError('digest cannot be used with a backing file: the copy leaves what the backing file holds unread');
    const digest = opts.digest === undefined ? undefined : new OrderedDigest(opts.digest);
    ctx.progress.phase('copy', total);
    await copyImage(sources, dev, { ...settings, digest }, counters);
    // --bitmaps copies the bitmaps after the data, so the copy marks nothing in them.
    if (opts.bitmaps && sources[0]) await copyBitmaps(sources[0], dev, (w) => ctx.warn(w));
    await dev.close();
    await output?.commit();
    ctx.progress.finish();
    return { target, format, size: total, ...counters, digest: digest?.result(total) };
  } finally {
    await dev?.close().catch(() => undefined);
    await Promise.allSettled(sources.map((s) => s.close()));
    // After a failure: the temporary file, or every file an in-place target created (none after commit).
    await output?.abort();
  }
}

/**
 * Converts `source` (or several sources, concatenated) into `target`, as
 * `qemu-img convert` does. Returns a job: await it, listen to `progress`,
 * cancel it with its `signal` option or `job.cancel()`. On error or abort
 * the sources are untouched and a target that convert created is removed
 * (an existing target given with `noCreate` is left as far as it got).
 * ByteStores given as sources or as the target are borrowed: the job never
 * closes them, whether it succeeds or fails. A store target is emptied and
 * written in place (no temporary name, nothing renamed or removed; a
 * failed convert leaves it as far as it got); with `noCreate` it is written
 * as it is. A target named by URL is an NBD export, written in place as
 * qemu-img writes it (an export smaller than the image is refused; what
 * the image does not cover is left as it was), or `s3://bucket/key`,
 * uploaded; `http(s)://` targets are refused.
 *
 * @example
 * ```ts
 * const job = convert('disk.raw', 'disk.qcow2', { targetFormat: 'qcow2' });
 * job.on('progress', (p) => console.log(`${p.done}/${p.total}`));
 * await job;
 * ```
 */
export function convert(source: Source | readonly Source[], target: ImageTarget, options: ConvertOptions = {}): Job<ConvertResult, ConvertPhase> {
  const sources: readonly Source[] = Array.isArray(source) ? source : [source as Source];
  // Loaded on use: the presets build on convert itself.
  if (options.preset !== undefined) return new Job(async (ctx) => (await import('./presets/convert.js')).runPresetConvert(sources, target, options, ctx), options);
  return new Job((ctx) => runConvert(sources, target, options, ctx), options);
}
