/**
 * amend: change format options of an image in place (`qemu-img amend`):
 * for qcow2 compat up/downgrade, lazy_refcounts, refcount_bits, data_file,
 * data_file_raw and size. The driver does the work crash-safely (new
 * structures written and flushed before one header switch; leaks at worst).
 */
import { InvalidArgumentError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { parseOptionString, typeOptions, type OptionSpec, type RawOption } from '../core/options.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { defaultRegistry } from '../block/registry.js';
import type { CreateOptionInput } from './create.js';

/** Phases of {@link amend}: `amend` (percent of the driver's amend work). */
export type AmendPhase = 'amend';

/** Options of {@link amend}. */
export interface AmendOptions extends JobOptions<AmendPhase>, Omit<OpenImageOptions, 'readOnly' | 'backing' | 'writableDepth' | 'forceShare'> {
  /** The options to change (`-o`): `'compat=0.10,refcount_bits=16'`, an object, or several (later ones win). */
  options: CreateOptionInput | readonly CreateOptionInput[];
  /** Format of the image (`-f`); probed when omitted. */
  format?: string | undefined;
  /** `--force` (LUKS keyslot management). */
  force?: boolean | undefined;
  /**
   * Every step of the driver's work as qemu's amend status callback reports
   * it: `done` of `total` units, where `total` projects the operations not
   * yet started from those seen (so it may change between calls).
   * Unthrottled, for a caller that draws qemu-img's `-p` line step for step;
   * the job's `progress` events are the throttled view of the same work.
   */
  onStatus?: ((done: number, total: number) => void) | undefined;
}

/** What {@link amend} changed. */
export interface AmendResult {
  /** The image amended. */
  readonly filename: string;
  /** Its format. */
  readonly format: string;
  /** The options applied, typed. */
  readonly options: ReadonlyMap<string, string | number | boolean>;
}

function toRaw(input: CreateOptionInput): RawOption[] {
  if (typeof input === 'string') return parseOptionString(input);
  return Object.entries(input).map(([key, v]) => ({ key, value: typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v) }));
}

/** The options `amend` accepts for `format` (for `-o help`). */
export function amendOptionSpecs(format: string): readonly OptionSpec[] {
  const driver = defaultRegistry.get(format);
  if (!driver.amendOptions) throw new UnsupportedError(`Format driver '${format}' does not support option amendment`);
  return driver.amendOptions;
}

/** Types `raw` against the amend options; a create-only option gets qemu's hint. */
function typeAmendOptions(specs: readonly OptionSpec[], createSpecs: readonly OptionSpec[], raw: readonly RawOption[]) {
  try {
    return typeOptions(specs, raw);
  } catch (err) {
    if (!(err instanceof VdiskError)) throw err;
    const names = new Set(specs.map((s) => s.name));
    try {
      typeOptions([...specs, ...createSpecs.filter((s) => !names.has(s.name))], raw);
    } catch {
      throw err;
    }
    throw new InvalidArgumentError(err.message, { hint: 'This option is only supported for image creation' });
  }
}

async function runAmend(filename: ImageTarget, opts: AmendOptions, ctx: JobContext<AmendPhase>): Promise<AmendResult> {
  const list = Array.isArray(opts.options) ? (opts.options as readonly CreateOptionInput[]) : [opts.options as CreateOptionInput];
  const raw = list.flatMap(toRaw);
  if (raw.length === 0) throw new InvalidArgumentError('Must specify options');
  const registry = opts.registry ?? defaultRegistry;
  const dev = await BlockDevice.open(filename, { ...opts, readOnly: false });
  try {
    const driver = registry.find(dev.format);
    const amendOptions = dev.amendOptions;
    if (!amendOptions || !driver?.amendOptions) throw new UnsupportedError(`Format driver '${dev.format}' does not support option amendment`);
    const values = typeAmendOptions(amendOptions, driver.createOptions, raw);
    ctx.progress.phase('amend', 100);
    let last = 0;
    await dev.amend({
      values,
      force: opts.force === true,
      signal: ctx.signal,
      onProgress: (done, total) => {
        opts.onStatus?.(done, total);
        const pct = Math.floor((done * 100) / Math.max(1, total));
        if (pct > last) ctx.progress.advance(pct - last);
        last = Math.max(last, pct);
      },
    });
    await dev.close();
    ctx.progress.finish();
    return { filename: dev.filename, format: dev.format, options: values };
  } finally {
    await dev.close().catch(() => undefined);
  }
}

/**
 * Changes format options of `filename` in place, as `qemu-img amend -o` does.
 *
 * @example
 * ```ts
 * await amend('disk.qcow2', { options: 'compat=0.10' });          // downgrade for old readers
 * await amend('disk.qcow2', { options: { refcount_bits: 64 } });  // wider refcounts
 * ```
 */
export function amend(filename: ImageTarget, options: AmendOptions): Job<AmendResult, AmendPhase> {
  return new Job((ctx) => runAmend(filename, options, ctx), options);
}
