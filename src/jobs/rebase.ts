/**
 * rebase: give an image a new backing file, as `qemu-img rebase` does. Safe
 * mode first copies into the image every cluster where the old and the new
 * backing chain differ (so the guest view does not change), flushes, and
 * switches the header last: an interrupted rebase leaves the same guest
 * view with some extra allocated clusters, and running it again completes
 * it. Unsafe mode only rewrites the name and format.
 */
import { throwIfAborted } from '../core/abort.js';
import { isZero } from '../core/bytes.js';
import { InvalidArgumentError, VdiskError } from '../core/errors.js';
import { asStep } from '../core/strerror.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import { unwrapOpenError } from '../block/layer-open.js';
import { pathCombine } from '../block/path-combine.js';
import { defaultRegistry } from '../block/registry.js';

/** Phases of {@link rebase}: `rebase` (bytes of the virtual size compared against the new backing file). */
export type RebasePhase = 'rebase';

/** Options of {@link rebase}. */
export interface RebaseOptions extends JobOptions<RebasePhase>, Omit<OpenImageOptions, 'readOnly' | 'backing' | 'writableDepth' | 'forceShare'> {
  /** Format of the image (`-f`); probed when omitted. */
  format?: string | undefined;
  /**
   * Format of the new backing file (`-F`, newer `-B`). Required to record a
   * backing file, as qemu-img 7.2 requires it (safe mode still copies first).
   */
  backingFormat?: string | undefined;
  /** Only rewrite the backing name and format (`-u`); nothing is read or copied. */
  unsafe?: boolean | undefined;
  /** Write the copied clusters compressed (`-c`, qemu 8.2). */
  compress?: boolean | undefined;
}

/** What {@link rebase} did. */
export interface RebaseResult {
  /** The backing file now recorded (undefined: the image is standalone). */
  readonly backing: string | undefined;
  /** Its recorded format. */
  readonly backingFormat: string | undefined;
  /** Guest bytes copied into the image to keep its content. */
  readonly copiedBytes: number;
}

const CHUNK = 2 * 1024 * 1024;
const SECTOR = 512;

/** Wraps a failure of the header change as qemu-img words it. */
function changeError(name: string, err: unknown): unknown {
  if (!(err instanceof VdiskError)) return err;
  return err.rephrase(`Could not change the backing file to '${name}': ${err.message}`, { offset: undefined, hint: undefined, stage: 'action' });
}

/** Reads `into.length` bytes at `offset` of `dev`, zeros past its end (a shorter backing file). */
async function readPadded(dev: BlockDevice | undefined, offset: number, into: Uint8Array): Promise<void> {
  into.fill(0);
  if (!dev || offset >= dev.size) return;
  await dev.read(offset, into.subarray(0, Math.min(into.length, dev.size - offset)));
}

/** Length of the run of 512-byte sectors at the start of `a` and `b` that are all equal, or all different. */
function sectorRun(a: Uint8Array, b: Uint8Array): { differ: boolean; length: number } {
  const same = (pos: number): boolean => Buffer.compare(a.subarray(pos, pos + SECTOR), b.subarray(pos, pos + SECTOR)) === 0;
  const first = same(0);
  let pos = Math.min(SECTOR, a.length);
  while (pos < a.length && same(pos) === first) pos = Math.min(a.length, pos + SECTOR);
  return { differ: !first, length: pos };
}

/**
 * Keeps one unit's old content `old` where `next` (the new backing file)
 * differs; returns the bytes written. Like qemu-img 7.2, only the sectors
 * that differ are written (so extended L2 images allocate only the
 * subclusters they need), except that a unit that read as zeros becomes a
 * zero unit whole (smaller than qemu's data).
 */
async function copyUnit(dev: BlockDevice, at: number, old: Uint8Array, next: Uint8Array, compress: boolean): Promise<number> {
  if (Buffer.compare(old, next) === 0) return 0;
  if (isZero(old)) await dev.writeZeroes(at, old.length);
  else if (compress) await dev.writeCompressed(at, old.slice());
  else {
    for (let pos = 0; pos < old.length; ) {
      const run = sectorRun(old.subarray(pos), next.subarray(pos));
      if (run.differ) await dev.write(at + pos, old.slice(pos, pos + run.length));
      pos += run.length;
    }
  }
  return old.length;
}

/**
 * Copies into the top image every unit it does not allocate where the old
 * chain (read through the top) and `next` differ. When `next` is the file
 * at `sameDepth` of the old chain, only what the layers above it allocate
 * can differ.
 */
async function copyDifferences(dev: BlockDevice, next: BlockDevice | undefined, sameDepth: number | undefined, compress: boolean, ctx: JobContext<RebasePhase>): Promise<number> {
  const unit = dev.granularity;
  const chunkSize = Math.max(unit, Math.floor(CHUNK / unit) * unit);
  const oldBuf = new Uint8Array(chunkSize);
  const newBuf = new Uint8Array(chunkSize);
  let copied = 0;
  for (let offset = 0; offset < dev.size; ) {
    throwIfAborted(ctx.signal);
    const top = await dev.topStatus(offset, dev.size - offset);
    if (top.present) {
      offset += top.length;
      ctx.progress.advance(top.length);
      continue;
    }
    let length = Math.min(top.length, chunkSize);
    if (sameDepth !== undefined) {
      const st = await dev.blockStatus(offset, length);
      length = st.length;
      if (!st.present || st.depth >= sameDepth) {
        offset += length;
        ctx.progress.advance(length);
        continue;
      }
    }
    const a = oldBuf.subarray(0, length);
    const b = newBuf.subarray(0, length);
    await dev.read(offset, a);
    await readPadded(next, offset, b);
    // Unit by unit (the first one may start mid-unit only at an odd top status).
    for (let pos = 0; pos < length; ) {
      const at = offset + pos;
      const end = Math.min(length, Math.floor(at / unit) * unit + unit - offset);
      const unitWrite = copyUnit(dev, at, a.subarray(pos, end), b.subarray(pos, end), compress && end - pos === unit && at % unit === 0);
      copied += await asStep('Error while writing to COW image', unitWrite);
      pos = end;
    }
    offset += length;
    ctx.progress.advance(length);
  }
  return copied;
}

async function runRebase(filename: ImageTarget, backing: string | undefined, opts: RebaseOptions, ctx: JobContext<RebasePhase>): Promise<RebaseResult> {
  const name = backing === '' ? undefined : backing;
  const unsafe = opts.unsafe === true;
  if (!unsafe && backing === undefined) throw new InvalidArgumentError('Must specify a backing file or use unsafe mode');
  const open: OpenImageOptions = { ...opts, format: opts.format };
  const dev = await BlockDevice.open(filename, { ...open, readOnly: false, backing: !unsafe });
  let next: BlockDevice | undefined;
  try {
    // qemu-img checks the name once the image is open, even when nothing will be opened with it.
    if (opts.backingFormat !== undefined && !(opts.registry ?? defaultRegistry).find(opts.backingFormat)) {
      throw new InvalidArgumentError(`Invalid format name: '${opts.backingFormat}'`);
    }
    if (opts.compress && !dev.canCompress) throw new InvalidArgumentError('Compression not supported for this file format');
    let copied = 0;
    if (!unsafe) {
      const path = name === undefined ? undefined : pathCombine(dev.top.path, name);
      if (path !== undefined) {
        try {
          next = await BlockDevice.open(path, { ...open, format: opts.backingFormat, readOnly: true });
        } catch (err) {
          if (!(err instanceof VdiskError)) throw err;
          // qemu-img opens it with blk_new_open: the open's own error, without the `Could not open 'x':` wrapper.
          const inner = unwrapOpenError(path, err);
          throw inner.rephrase(`Could not open new backing file '${name}': ${inner.message}`, { cause: err, offset: undefined });
        }
      }
      // When the new backing file is in the old chain, only the layers above it can differ.
      const nextId = next?.identity();
      let sameDepth: number | undefined;
      dev.layers.forEach((_, d) => {
        const id = dev.identity(d);
        if (d > 0 && sameDepth === undefined && id && nextId && id.dev === nextId.dev && id.ino === nextId.ino) sameDepth = d;
      });
      ctx.progress.phase('rebase', dev.size);
      copied = await copyDifferences(dev, next, sameDepth, opts.compress === true, ctx);
      await dev.flush();
    }
    // The header changes last, after the copies are on disk.
    const shown = name ?? '';
    // qemu-img asks for the format before the driver is asked to change anything
    if (name !== undefined && opts.backingFormat === undefined) throw changeError(shown, new InvalidArgumentError('backing format must be specified'));
    try {
      await dev.setBacking(name === undefined ? undefined : { filename: name, format: opts.backingFormat });
    } catch (err) {
      throw changeError(shown, err);
    }
    await next?.close();
    next = undefined;
    await dev.close();
    ctx.progress.finish();
    return { backing: name, backingFormat: name === undefined ? undefined : opts.backingFormat, copiedBytes: copied };
  } finally {
    await next?.close().catch(() => undefined);
    await dev.close().catch(() => undefined);
  }
}

/**
 * Changes the backing file of `filename` to `backing` (relative names are
 * taken against the image's directory; `''` or undefined with `unsafe`
 * makes it standalone), as `qemu-img rebase` does. Re-runnable after an
 * interruption.
 *
 * @example
 * ```ts
 * await rebase('top.qcow2', 'base.qcow2', { backingFormat: 'qcow2' }); // skip a middle image safely
 * await rebase('top.qcow2', '', {});                                    // standalone, same content
 * ```
 */
export function rebase(filename: ImageTarget, backing: string | undefined, options: RebaseOptions = {}): Job<RebaseResult, RebasePhase> {
  return new Job((ctx) => runRebase(filename, backing, options, ctx), options);
}
