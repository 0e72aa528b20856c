/**
 * convertFromStream: an image read from a forward-only stream (a pipe,
 * stdin, an upload) into a new target, without scratch space for the
 * source. Each guest write the format's forward reader yields is applied
 * as it comes, a few at a time; the target is created as convert creates
 * one (a new file under a temporary name, renamed when complete; a
 * ByteStore written in place) and removed again on failure or abort.
 * Sources whose size is known only at their end (raw, fixed VHD) grow the
 * target as they are written and set its size at the end.
 */
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import { targetName, type OpenImageOptions } from '../block/chain.js';
import { openForward, type ForwardOpened, type StreamWrapper } from '../block/forward-open.js';
import type { IngestPolicy } from '../block/ingest-policy.js';
import { defaultRegistry, type DriverRegistry } from '../block/registry.js';
import { prepareTarget, type OutputSpec, type OutputTarget } from '../block/target.js';
import type { GuestWrite, SpillSettings } from '../block/types.js';
import type { CacheMode } from '../core/cache-mode.js';
import { prepareCreate, typedCreateOptions, type CreateOptionInput } from './create.js';
import { isPassThroughFormat } from '../block/registry.js';

/** Phases of {@link convertFromStream}: `copy` (bytes taken from the stream; the total grows as they come). */
export type FromStreamPhase = 'copy';

/** Options of {@link convertFromStream}. */
export interface ConvertFromStreamOptions extends JobOptions<FromStreamPhase>, Pick<OpenImageOptions, 'onWarning' | 'locking'> {
  /** Format of the stream (`-f`); probed from its first bytes when omitted (a fixed VHD must be named: it probes as raw). */
  sourceFormat?: string | undefined;
  /** Target format (`-O`, default `raw`). */
  targetFormat?: string | undefined;
  /**
   * Target create options (`-o`). A `size` among them is replaced by the
   * stream's, or taken as `size` when the stream's is known only at its end.
   */
  options?: CreateOptionInput | readonly CreateOptionInput[] | undefined;
  /**
   * Virtual size of the target when the stream's is known only at its end
   * (raw, fixed VHD) and the target format cannot grow as it is written.
   * Without it such a target is grown while it is written and set to the
   * final size at the end.
   */
  size?: number | undefined;
  /** Name of the stream in messages (default `-`). */
  sourceName?: string | undefined;
  /** Peel gzip, zstd, tar (OVA) and zip wrappers off the stream (default true; never with `sourceFormat: 'raw'`). */
  unwrap?: boolean | undefined;
  /** What the stream must satisfy (formats, virtual size, inflated size); the target is the caller's own. */
  policy?: IngestPolicy | undefined;
  /** Where a forward reader may keep what it cannot place yet, and how much. */
  spill?: SpillSettings | undefined;
  /** Writes in flight (1..16, default 8). */
  parallel?: number | undefined;
  /** Cache mode of the target (`-t`; default `writeback`). */
  targetCache?: CacheMode | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
}

/** What {@link convertFromStream} did. */
export interface ConvertFromStreamResult {
  /** The target's name. */
  readonly target: string;
  /** Its format. */
  readonly format: string;
  /** Its virtual size. */
  readonly size: number;
  /** The format read from the stream. */
  readonly sourceFormat: string;
  /** Wrappers peeled off the stream, outermost first. */
  readonly wrappers: readonly StreamWrapper[];
  /** The archive entry read (tar, OVA, zip). */
  readonly entry: string | undefined;
  /** Bytes taken from the stream. */
  readonly bytesRead: number;
  /** Guest bytes written as data. */
  readonly dataBytes: number;
}

/** A stream: a Node `Readable`, a web `ReadableStream`, or any async iterable of byte chunks. */
export type StreamInput = AsyncIterable<Uint8Array | string>;

/** Growth step of a target whose size is not known yet: at least this, at most its size again. */
const GROW_MIN = 64 * 1024 * 1024;
const GROW_MAX = 1024 * 1024 * 1024;

function validate(opts: ConvertFromStreamOptions): number {
  const m = opts.parallel ?? 8;
  if (!Number.isInteger(m) || m < 1 || m > 16) throw new InvalidArgumentError('Invalid number of coroutines. Allowed number of coroutines is between 1 and 16');
  if (opts.size !== undefined && (!Number.isSafeInteger(opts.size) || opts.size < 0)) throw new InvalidArgumentError(`Invalid size ${opts.size}`);
  return m;
}

/** The `size` the caller gives: the option, else one among the create options. */
function givenSize(opts: ConvertFromStreamOptions): number | undefined {
  if (opts.size !== undefined) return opts.size;
  const registry = opts.registry ?? defaultRegistry;
  const size = typedCreateOptions(registry, registry.get(opts.targetFormat ?? 'raw'), opts.options).get('size');
  return size === undefined ? undefined : Number(size);
}

function optionList(input: ConvertFromStreamOptions['options']): CreateOptionInput[] {
  if (input === undefined) return [];
  return Array.isArray(input) ? [...(input as readonly CreateOptionInput[])] : [input as CreateOptionInput];
}

/** Writes in flight, at most `max`; a failed one fails the next call. */
class InFlight {
  readonly #max: number;
  readonly #running = new Set<Promise<void>>();
  #failure: unknown;
  #failed = false;

  constructor(max: number) {
    this.#max = max;
  }

  async add(work: () => Promise<void>): Promise<void> {
    this.#check();
    while (this.#running.size >= this.#max) await Promise.race(this.#running);
    this.#check();
    const p: Promise<void> = work().then(
      () => void this.#running.delete(p),
      (err: unknown) => {
        this.#running.delete(p);
        if (!this.#failed) [this.#failed, this.#failure] = [true, err];
      },
    );
    this.#running.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.#running);
    this.#check();
  }

  #check(): void {
    if (this.#failed) throw this.#failure;
  }
}

/** The target, created at `size` as convert creates one, and opened for writing. */
async function createTarget(spec: OutputSpec, opts: ConvertFromStreamOptions, size: number): Promise<{ output: OutputTarget; dev: BlockDevice; format: string }> {
  const registry = opts.registry ?? defaultRegistry;
  const format = opts.targetFormat ?? 'raw';
  const options = [...optionList(opts.options), { size }];
  const plan = await prepareCreate(spec, { format, options, registry, locking: opts.locking, onWarning: opts.onWarning });
  if (plan.extraFiles) throw new UnsupportedError(`A stream cannot be converted into a ${format} image of several files`);
  const output = prepareTarget(spec, { locking: opts.locking });
  try {
    await plan.execute(output, opts.targetCache);
    const dev = await BlockDevice.open(output.image, { format, readOnly: false, registry, locking: output.locking, cache: opts.targetCache, onWarning: opts.onWarning });
    return { output, dev, format };
  } catch (err) {
    await output.abort();
    throw err;
  }
}

/** How the target follows a size known only at the end: grown as written, set at the end. */
class Growth {
  constructor(
    private readonly dev: BlockDevice,
    private readonly fixed: boolean,
    private readonly name: string,
  ) {}

  /** Refuses a target that would have to grow and cannot, before anything is written. */
  check(): void {
    if (!this.fixed && !this.dev.canResize) {
      throw new UnsupportedError(`The size of '${this.name}' is known only at its end and ${this.dev.format} images cannot grow: give the target's size (option size)`, { file: this.name });
    }
  }

  /** Makes room for `[offset, end)` (waiting for the writes in flight first). */
  async fit(end: number, inFlight: InFlight): Promise<void> {
    const size = this.dev.size;
    if (end <= size || this.fixed) return;
    await inFlight.drain();
    const step = Math.min(Math.max(size, GROW_MIN), GROW_MAX);
    await this.dev.resize(Math.ceil(Math.max(end, size + step) / 512) * 512, { shrink: false });
  }

  /** Sets the final size (a stream of raw bytes need not end on a sector). */
  async finish(size: number): Promise<void> {
    if (this.dev.size === size) return;
    await this.dev.resize(size, { shrink: true });
  }
}

function isZero(b: Uint8Array): boolean {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.alloc(b.length));
}

async function apply(opened: ForwardOpened, dev: BlockDevice, growth: Growth, parallel: number, zeroInit: boolean, name: string): Promise<number> {
  const inFlight = new InFlight(parallel);
  let dataBytes = 0;
  for await (const w of opened.image.writes() as AsyncIterable<GuestWrite>) {
    await growth.fit(w.offset + ('data' in w ? w.data.length : w.length), inFlight);
    // Past a size fixed in advance only zeros may come (a fixed VHD's data area can be longer than its disk).
    const length = Math.max(0, Math.min('data' in w ? w.data.length : w.length, dev.size - w.offset));
    if ('data' in w && length < w.data.length && !isZero(w.data.subarray(length))) {
      throw new CorruptImageError(`'${name}': the stream holds data at offset ${w.offset + length}, past the virtual size of ${dev.size} bytes`, { file: name, data: { size: dev.size } });
    }
    if (length === 0) continue;
    if ('data' in w) {
      dataBytes += length;
      const data = w.data.subarray(0, length);
      await inFlight.add(() => dev.write(w.offset, data));
    } else if (!zeroInit) {
      await inFlight.add(() => dev.writeZeroes(w.offset, length));
    }
  }
  await inFlight.drain();
  return dataBytes;
}

async function runFromStream(input: StreamInput, targetSpec: OutputSpec, opts: ConvertFromStreamOptions, ctx: JobContext<FromStreamPhase>): Promise<ConvertFromStreamResult> {
  const parallel = validate(opts);
  const target = targetName(targetSpec);
  ctx.progress.phase('copy', 0);
  const opened = await openForward(input, {
    name: opts.sourceName,
    format: opts.sourceFormat,
    unwrap: opts.unwrap,
    policy: opts.policy,
    spill: opts.spill,
    registry: opts.registry,
    signal: ctx.signal,
    onBytes: (n) => {
      ctx.progress.grow(n);
      ctx.progress.advance(n);
    },
  });
  let output: OutputTarget | undefined;
  let dev: BlockDevice | undefined;
  try {
    const known = opened.image.size;
    const given = known === undefined ? givenSize(opts) : undefined;
    // Formats other than raw are made non-empty first: some cannot describe an empty disk.
    const created = await createTarget(targetSpec, opts, known ?? given ?? (isPassThroughFormat(opts.targetFormat ?? 'raw') ? 0 : GROW_MIN));
    ({ output, dev } = created);
    const growth = new Growth(dev, known !== undefined || given !== undefined, opts.sourceName ?? '-');
    growth.check();
    const dataBytes = await apply(opened, dev, growth, parallel, await output.readsAsZeros(), opts.sourceName ?? '-');
    const final = opened.image.finalSize();
    opened.checkFinalSize(final);
    // A size the caller gave stays (what the stream did not fill reads as zeros); a grown target is set to the stream's.
    if (known === undefined && given === undefined) await growth.finish(final);
    const size = dev.size;
    await opened.drain();
    await dev.close();
    await output.commit();
    ctx.progress.finish();
    return { target, format: created.format, size, sourceFormat: opened.format, wrappers: opened.wrappers, entry: opened.entry, bytesRead: opened.bytesRead(), dataBytes };
  } finally {
    await dev?.close().catch(() => undefined);
    await opened.close();
    // After a failure: the temporary file (nothing after commit).
    await output?.abort();
  }
}

/**
 * Reads an image from a forward-only stream into `target` (a path or a
 * ByteStore), without scratch space for the source: raw, vpc (fixed and
 * dynamic), vmdk streamOptimized and qcow2, optionally wrapped in gzip,
 * zstd, tar (an OVA: its disk) or zip. Returns a job: await it, cancel it
 * with its `signal` or `job.cancel()`; on error or abort a new target file
 * is removed. The stream is read to its end.
 *
 * @example
 * ```ts
 * import { convertFromStream } from 'vdisk/stream';
 * await convertFromStream(req, 'disk.qcow2', { sourceFormat: 'vmdk', targetFormat: 'qcow2' });
 * ```
 * @throws {UnsupportedError} EUNSUPPORTED for a format or wrapper that cannot be read forward
 * @throws {CorruptImageError} ECORRUPT for damaged images; reason `stream-ended` for a stream that ended early and
 *   `stream-layout` for a layout that cannot be read forward, both naming the offset
 * @throws {PolicyError} EPOLICY for what the ingest policy refuses, and (reason `spill-limit`) past the spill's limit
 */
export function convertFromStream(input: StreamInput, target: OutputSpec, options: ConvertFromStreamOptions = {}): Job<ConvertFromStreamResult, FromStreamPhase> {
  return new Job((ctx) => runFromStream(input, target, options, ctx), options);
}
