/**
 * dd: copy a range of an image into a new image (`qemu-img dd`), with
 * qemu-img 7.2's semantics: the output holds the input from `skip × bs`
 * on, up to `count × bs` bytes (or the input's end), every block written
 * as data, as qemu-img writes it.
 */
import { InvalidArgumentError, UnknownFormatError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { defaultRegistry } from '../block/registry.js';
import { checkOutputSpec } from '../block/target-check.js';
import { prepareTarget, type OutputSpec, type OutputTarget } from '../block/target.js';
import { refuseUncreatable } from '../block/network-target.js';
import { networkOf, prepareCreate } from './create.js';

/** Phases of {@link dd}: `copy` (bytes from the input). */
export type DdPhase = 'copy';

/** Options of {@link dd}. */
export interface DdOptions extends JobOptions<DdPhase>, Omit<OpenImageOptions, 'readOnly' | 'format'> {
  /** Input format (`-f`); probed when omitted. */
  sourceFormat?: string | undefined;
  /** Output format (`-O`, default `raw`). */
  targetFormat?: string | undefined;
  /** Block size in bytes (`bs=`, 1..2^31-1, default 512). */
  blockSize?: number | undefined;
  /** Blocks to copy (`count=`); the whole input when omitted. */
  count?: number | undefined;
  /** Input blocks to skip (`skip=`). */
  skip?: number | undefined;
}

/** What {@link dd} did. */
export interface DdResult {
  /** The output's virtual size as created. */
  readonly size: number;
  /** Bytes copied. */
  readonly bytes: number;
  /** True when `skip` was past the input's end (qemu-img reports "cannot skip to specified offset"; the output is empty). */
  readonly skippedPastEnd: boolean;
}

/** Bytes moved per read/write: whole blocks, about 1 MiB (the bytes written are the same as block by block). */
const CHUNK = 1024 * 1024;

async function runDd(input: ImageTarget, spec: OutputSpec, opts: DdOptions, ctx: JobContext<DdPhase>): Promise<DdResult> {
  checkOutputSpec(spec);
  const output = typeof spec === 'string' ? spec : spec.name;
  const bs = opts.blockSize ?? 512;
  if (!Number.isSafeInteger(bs) || bs < 1 || bs > 2147483647) throw new InvalidArgumentError('Invalid bs specified. Must be between 1 and 2147483647.');
  const src = await BlockDevice.open(input, { ...opts, format: opts.sourceFormat, readOnly: true });
  let dst: BlockDevice | undefined;
  let target: OutputTarget | undefined;
  try {
    const format = opts.targetFormat ?? 'raw';
    if (!defaultRegistry.find(format)) throw new UnknownFormatError('Unknown file format', { data: { format } });
    let size = src.size;
    if (opts.count !== undefined && opts.count * bs < size) size = opts.count * bs;
    const skip = opts.skip ?? 0;
    const skippedPastEnd = opts.skip !== undefined && size < skip * bs;
    // img_dd refuses a read-only protocol itself, in words without the output's name.
    if (typeof spec === 'string') refuseUncreatable(spec);
    const plan = await prepareCreate(spec, { ...opts, onProgress: undefined, format, size: skippedPastEnd ? 0 : size - skip * bs, options: undefined });
    // Written under a temporary name and renamed when complete, like convert's target (block/target.ts).
    // Unlike convert, dd shares its input with writers, as qemu-img does: the image locks alone decide.
    target = prepareTarget(spec, { multiFile: plan.extraFiles, locking: opts.locking, network: networkOf({ ...opts, signal: ctx.signal }) });
    try {
      await plan.execute(target);
    } catch (err) {
      if (err instanceof VdiskError && err.cause instanceof VdiskError) {
        throw err.rephrase(`${output}: error while creating output image: ${err.cause.message}`, { file: output, cause: err.cause, offset: undefined, data: undefined });
      }
      throw err;
    }
    // -U shares the input only (img_dd opens the output without force-share).
    dst = await BlockDevice.open(target.image, { ...opts, format, readOnly: false, backing: false, locking: target.locking, forceShare: false });
    if (skippedPastEnd) ctx.warn({ code: 'dd-skip', message: `${src.filename}: cannot skip to specified offset` });
    let inPos = skippedPastEnd ? size : skip * bs;
    const chunk = Math.max(bs, Math.floor(CHUNK / bs) * bs);
    const buf = new Uint8Array(Math.min(chunk, Math.max(0, size - inPos)));
    ctx.progress.phase('copy', Math.max(0, size - inPos));
    let outPos = 0;
    while (inPos < size) {
      ctx.signal.throwIfAborted();
      const n = Math.min(buf.length, size - inPos);
      const part = buf.subarray(0, n);
      await src.read(inPos, part);
      await dst.write(outPos, part);
      inPos += n;
      outPos += n;
      ctx.progress.advance(n);
    }
    await dst.close();
    await target.commit();
    ctx.progress.finish();
    return { size: dst.size, bytes: outPos, skippedPastEnd };
  } finally {
    await dst?.close().catch(() => undefined);
    await src.close();
    await target?.abort();
  }
}

/**
 * Copies `input` (from `skip × blockSize`, at most `count × blockSize`
 * bytes) into a new image `output`, as `qemu-img dd` does. `output` is a
 * path, or a ByteStore the caller opened: that one is emptied and written
 * in place, and stays the caller's to close.
 *
 * @example
 * ```ts
 * await dd('disk.qcow2', 'mbr.raw', { blockSize: 512, count: 1 });
 * ```
 * @throws {InvalidArgumentError} EINVAL for a bad block size, {@link UnknownFormatError} EFORMAT for an unknown output format
 */
export function dd(input: ImageTarget, output: OutputSpec, options: DdOptions = {}): Job<DdResult, DdPhase> {
  return new Job((ctx) => runDd(input, output, options, ctx), options);
}
