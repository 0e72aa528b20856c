/**
 * bitmap: add, remove, clear, enable, disable and merge persistent dirty
 * bitmaps of an image (`qemu-img bitmap`). Actions run in order; the image
 * is closed (and what was done so far stored) even when one fails, as
 * qemu-img does.
 */
import { InvalidArgumentError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { settleAll } from '../core/settle.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import type { ImageBitmaps } from '../block/types.js';

/** One `qemu-img bitmap` action. */
export type BitmapAction =
  | {
      /** What to do to the bitmap. */
      readonly op: 'add' | 'remove' | 'clear' | 'enable' | 'disable';
    }
  | {
      /** Merge another bitmap into this one. */
      readonly op: 'merge';
      /** The bitmap merged in (from `sourceFile` when given). */
      readonly source: string;
    };

/** Phases of {@link bitmap}: `bitmap` (one step per action). */
export type BitmapPhase = 'bitmap';

/** Options of {@link bitmap}. */
export interface BitmapOptions extends JobOptions<BitmapPhase>, Omit<OpenImageOptions, 'readOnly' | 'backing' | 'forceShare'> {
  /** Granularity of an added bitmap in bytes (`-g`); the format's default when omitted. */
  granularity?: number | undefined;
  /** Image holding the `merge` sources (`-b`: a path, or a store the job borrows); the image itself when omitted. */
  sourceFile?: ImageTarget | undefined;
  /** Format of `sourceFile` (`-F`). */
  sourceFormat?: string | undefined;
}

function validate(actions: readonly BitmapAction[], opts: BitmapOptions): void {
  if (actions.length === 0) throw new InvalidArgumentError('Need at least one action: add, remove, clear, enable, disable or merge');
  if (opts.granularity !== undefined && !actions.some((a) => a.op === 'add')) throw new InvalidArgumentError('granularity only supported with an add action');
  if (opts.sourceFormat !== undefined && opts.sourceFile === undefined) throw new InvalidArgumentError('sourceFormat only supported with sourceFile');
  if (opts.sourceFile !== undefined && !actions.some((a) => a.op === 'merge')) throw new InvalidArgumentError('sourceFile only supported with a merge action');
}

function usable(bitmaps: ImageBitmaps | undefined, name: string): number {
  const b = bitmaps?.list().find((x) => x.name === name);
  if (!b) throw new InvalidArgumentError(`Dirty bitmap '${name}' not found`);
  if (b.inUse) throw new InvalidArgumentError(`Bitmap '${name}' is inconsistent and cannot be used`);
  return b.granularity;
}

async function runAction(dev: BlockDevice, src: BlockDevice, name: string, action: BitmapAction, opts: BitmapOptions): Promise<void> {
  const bitmaps = dev.bitmaps;
  const need = <K extends keyof ImageBitmaps>(key: K): NonNullable<ImageBitmaps[K]> => {
    const fn = bitmaps?.[key];
    if (!bitmaps || fn === undefined) throw new InvalidArgumentError(`Dirty bitmap '${name}' not found`);
    return (fn as (...a: unknown[]) => unknown).bind(bitmaps) as NonNullable<ImageBitmaps[K]>;
  };
  switch (action.op) {
    case 'add': {
      if (!bitmaps?.add) throw new UnsupportedError(`Can't store persistent bitmaps to ${dev.filename}: Operation not supported`);
      return bitmaps.add(name, { granularity: opts.granularity, enabled: true });
    }
    case 'remove':
      // Inconsistent bitmaps may be removed (that is how they are got rid of).
      if (!bitmaps?.list().some((b) => b.name === name)) throw new InvalidArgumentError(`Dirty bitmap '${name}' not found`);
      return need('remove')(name);
    case 'clear':
      usable(bitmaps, name);
      return need('clear')(name);
    case 'enable':
    case 'disable':
      usable(bitmaps, name);
      return need('setEnabled')(name, action.op === 'enable');
    case 'merge': {
      usable(bitmaps, name);
      const sb = src.bitmaps;
      const gran = usable(sb, action.source);
      if (src.size !== dev.size) {
        throw new InvalidArgumentError(`Bitmaps are of different sizes (destination size is ${dev.size}, source size is ${src.size}) and can't be merged`);
      }
      const bits = await sb!.read(action.source);
      return need('merge')(name, bits, gran);
    }
  }
}

async function runBitmap(filename: ImageTarget, name: string, actions: readonly BitmapAction[], options: BitmapOptions, ctx: JobContext<BitmapPhase>): Promise<void> {
  validate(actions, options);
  const dev = await BlockDevice.open(filename, { ...options, readOnly: false, backing: false, signal: ctx.signal });
  let src = dev;
  let failure: unknown;
  try {
    if (options.sourceFile !== undefined) src = await BlockDevice.open(options.sourceFile, { ...options, format: options.sourceFormat, readOnly: true, backing: false, signal: ctx.signal });
    ctx.progress.phase('bitmap', actions.length);
    for (const action of actions) {
      // Cancelled between actions: those done so far are stored, as on a failed one.
      ctx.signal.throwIfAborted();
      try {
        await runAction(dev, src, name, action, options);
      } catch (err) {
        if (!(err instanceof VdiskError)) throw err;
        throw err.rephrase(`Operation ${action.op} on bitmap ${name} failed: ${err.message}`, { file: dev.filename, offset: undefined, data: undefined });
      }
    }
  } catch (err) {
    failure = err;
  }
  const closing = settleAll([src !== dev ? src.close() : Promise.resolve(), dev.close()]);
  if (failure !== undefined) {
    await closing.catch(() => undefined); // the first failure is the one to report
    throw failure;
  }
  await closing;
  ctx.progress.finish();
}

/**
 * Runs `actions` on bitmap `name` of `filename`, in order, as
 * `qemu-img bitmap` does. Errors read `Operation <op> on bitmap <name>
 * failed: <why>`. Returns a job: await it, or cancel it (between actions)
 * with its `signal` option or `job.cancel()`.
 *
 * @example
 * ```ts
 * await bitmap('disk.qcow2', 'backup-0', [{ op: 'add' }], { granularity: 65536 });
 * await bitmap('disk.qcow2', 'backup-0', [{ op: 'disable' }, { op: 'merge', source: 'other' }]);
 * ```
 * @throws {InvalidArgumentError} EINVAL for bad combinations and failed actions
 */
export function bitmap(filename: ImageTarget, name: string, actions: readonly BitmapAction[], options: BitmapOptions = {}): Job<void, BitmapPhase> {
  return new Job((ctx) => runBitmap(filename, name, actions, options, ctx), options);
}
