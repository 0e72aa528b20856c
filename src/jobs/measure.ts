/**
 * measure: how large a new image would be, for a virtual size or for the
 * content of an existing image (`qemu-img measure`). The target driver
 * does the arithmetic; this job walks the source's block status once per
 * run of equal status, so its cost follows the allocated data, not the
 * virtual size.
 */
import { alignUp } from '../core/bytes.js';
import { InvalidArgumentError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { parseOptionString, typeOptions, type OptionValue, type RawOption } from '../core/options.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { defaultRegistry } from '../block/registry.js';
import type { MeasureResult, MeasureSource } from '../block/types.js';
import { exactLength } from './convert-stream.js';

export type { MeasureResult } from '../block/types.js';

/** Phases of {@link measure}: `measure` (bytes of the source scanned for allocation), `plan` (with `exact`: bytes of the source read to lay out the stream). */
export type MeasurePhase = 'measure' | 'plan';

/** Options of {@link measure}. */
export interface MeasureOptions extends JobOptions<MeasurePhase>, Omit<OpenImageOptions, 'readOnly' | 'format'> {
  /** Virtual size to measure for (`--size`), instead of a source image. */
  size?: number | undefined;
  /** Format of the source image (`-f`); probed when omitted. */
  sourceFormat?: string | undefined;
  /** Target format (`-O`, default `raw`). */
  targetFormat?: string | undefined;
  /** Target create options (`-o`), one string or several (later ones win). */
  options?: string | readonly string[] | undefined;
  /**
   * Also find the exact length of the image `convertToStream` (`vdisk/stream`) would
   * produce from the source with these options (`exactSize`; `--exact`). It
   * reads the source's data (and compresses it with `compress`).
   */
  exact?: boolean | undefined;
  /** With `exact`: the stream's units compressed (`-c`). */
  compress?: boolean | undefined;
  /** With `exact`: `0` counts every unit as data (`-S 0`). */
  sparseSize?: number | undefined;
}

const MAX_STATUS_REQUEST = 1 << 30;
/** Runs between two progress reports. */
const PROGRESS_RUNS = 256;

/** The bytes qemu counts as data: every target cluster holding a data byte, walking block status. */
/** A block status failure in qcow2_measure's words. */
function unableToGetStatus(err: unknown): unknown {
  return err instanceof VdiskError && err.code !== 'EABORTED' ? err.rephrase(`Unable to get block status: ${err.message}`) : err;
}

async function allocatedBytes(dev: BlockDevice, clusterSize: number, ctx: JobContext<MeasurePhase>): Promise<number> {
  const size = dev.size;
  ctx.progress.phase('measure', size);
  let required = 0;
  // Progress told every so many runs: a fragmented image has tens of thousands, each a few microseconds.
  let untold = 0;
  let runs = 0;
  for (let offset = 0; offset < size; ) {
    ctx.signal.throwIfAborted();
    const len = Math.min(size - offset, MAX_STATUS_REQUEST);
    const soon = dev.statusSoon(offset, len, unableToGetStatus);
    const st = soon instanceof Promise ? await soon : soon;
    let n = st.length;
    if (!st.zero && st.data) {
      n = alignUp(offset + n, clusterSize) - offset;
      required += (offset % clusterSize) + n;
    }
    offset += n;
    untold += n;
    if (++runs % PROGRESS_RUNS === 0) {
      ctx.progress.advance(untold);
      untold = 0;
    }
  }
  ctx.progress.advance(untold);
  return required;
}

function typedOptions(format: string, input: MeasureOptions['options']): Map<string, OptionValue> {
  const registry = defaultRegistry;
  const driver = registry.get(format);
  if (!driver.create) throw new InvalidArgumentError(`Format driver '${format}' does not support image creation`);
  const list = input === undefined ? [] : typeof input === 'string' ? [input] : input;
  const raw: RawOption[] = list.flatMap((s) => parseOptionString(s));
  try {
    return typeOptions(registry.createOptions(driver), raw);
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      // qemu-img prints the parse error's own hint (size suffixes) before its summary line.
      const summary = `vdisk: Invalid options for file format '${format}'`;
      throw new InvalidArgumentError(err.message, { cause: err, hint: err.hint === undefined ? summary : `${err.hint}\n${summary}` });
    }
    throw err;
  }
}

async function runMeasure(filename: ImageTarget | undefined, opts: MeasureOptions, ctx: JobContext<MeasurePhase>): Promise<MeasureResult> {
  if (filename === undefined && opts.size === undefined) throw new InvalidArgumentError('Either size or one source must be given.');
  if (filename !== undefined && opts.size !== undefined) throw new InvalidArgumentError('size cannot be used together with a source.');
  const registry = opts.registry ?? defaultRegistry;
  let dev: BlockDevice | undefined;
  try {
    if (filename !== undefined) {
      // `snapshot` (-l) measures the content of an internal snapshot instead of the current state.
      dev = await BlockDevice.open(filename, { ...opts, format: opts.sourceFormat, readOnly: true });
    }
    const format = opts.targetFormat ?? 'raw';
    const driver = registry.get(format);
    if (!driver.create) throw new InvalidArgumentError(`Format driver '${format}' does not support image creation`);
    const options = typedOptions(format, opts.options);
    const size = opts.size ?? Number(options.get('size') ?? 0);
    // A format qemu-img cannot measure is measured by its stream when `exact` asks for one.
    if (!driver.measure && !(opts.exact && driver.streamWriter)) throw new UnsupportedError(`Block driver '${format}' does not support size measurement`);
    let source: MeasureSource | undefined;
    if (dev) {
      const d = dev;
      const bitmaps = d.bitmaps;
      source = { virtualSize: d.size, allocatedBytes: (cs) => allocatedBytes(d, cs, ctx), bitmaps: bitmaps?.supported ? bitmaps.list() : undefined };
    }
    let result = driver.measure ? await driver.measure(size, options, source) : undefined;
    if (opts.exact) {
      if (!dev) throw new InvalidArgumentError('exact needs a source image');
      const exactSize = await exactLength(dev, { ...opts, options: opts.options }, ctx as JobContext<'plan'>);
      // Without a measure of its own, the streamed image is the one measured: it needs exactly its length.
      result = { ...(result ?? { required: exactSize, fullyAllocated: exactSize }), exactSize };
    }
    if (!result) throw new UnsupportedError(`Block driver '${format}' does not support size measurement`);
    ctx.progress.finish();
    return result;
  } finally {
    await dev?.close();
  }
}

/**
 * Measures the file size a new image of `targetFormat` needs: for `size`
 * bytes, or for the content of `filename` (pass `undefined` with `size`).
 * Returns qemu-img's `required`, `fully-allocated` and, for qcow2 v3
 * targets of sources that can hold persistent bitmaps, `bitmaps`.
 *
 * @example
 * ```ts
 * const { required, fullyAllocated } = await measure('disk.raw', { targetFormat: 'qcow2' });
 * const empty = await measure(undefined, { size: 10 * 2 ** 30, targetFormat: 'qcow2' });
 * ```
 * @throws {InvalidArgumentError} EINVAL for bad options, {@link UnsupportedError} EUNSUPPORTED for formats that cannot be measured
 */
export function measure(filename: ImageTarget | undefined, options: MeasureOptions = {}): Job<MeasureResult, MeasurePhase> {
  return new Job((ctx) => runMeasure(filename, options, ctx), options);
}
