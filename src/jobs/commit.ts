/**
 * commit: write what an overlay (and the images between it and the base)
 * holds into a backing file further down, as `qemu-img commit` does. The
 * base is grown when the overlay is larger (never shrunk), flushed, and only
 * then is the overlay emptied (unless `drop`), so an interrupted commit
 * leaves every image consistent and the overlay's guest view unchanged;
 * running it again completes it.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { asStep } from '../core/strerror.js';
import { BlockDevice } from '../block/device.js';
import { defaultRegistry } from '../block/registry.js';
import { probedRawWarning, type ImageTarget, type OpenImageOptions } from '../block/chain.js';
import { findBackingImage } from '../block/find-backing.js';
import { copyImage, type CopyCounters } from './copy-loop.js';

/** Phases of {@link commit}: `commit` (bytes of the overlay's virtual size). */
export type CommitPhase = 'commit';

/** Options of {@link commit}. */
export interface CommitOptions extends JobOptions<CommitPhase>, Omit<OpenImageOptions, 'readOnly' | 'backing' | 'writableDepth' | 'forceShare'> {
  /** Format of the overlay (`-f`); probed when omitted. */
  format?: string | undefined;
  /**
   * The backing file to commit into (`-b`), named as in the chain (relative
   * names are taken against each overlay's directory); default: the
   * overlay's own backing file. Giving it implies `drop`.
   */
  base?: string | undefined;
  /** Leave the overlay's data in place (`-d`); otherwise it is emptied after the commit. */
  drop?: boolean | undefined;
  /** Write at most this many bytes per second (`-r`); 0 = unlimited. */
  rateLimit?: number | undefined;
}

/** What {@link commit} did. */
export interface CommitResult {
  /** The image committed into, as the chain names it. */
  readonly base: string;
  /** Its depth below the overlay (1 = the overlay's backing file). */
  readonly baseDepth: number;
  /** The base's virtual size before, and after growing to the overlay's size. */
  readonly baseSize: {
    /** Before the commit. */
    readonly before: number;
    /** After growing (equal to `before` when the base was large enough). */
    readonly after: number;
  };
  /** Bytes written into the base as data. */
  readonly dataBytes: number;
  /** Bytes written into the base as zeros. */
  readonly zeroBytes: number;
  /** True when the overlay was emptied (not `drop`, and its format can). */
  readonly emptied: boolean;
}

const BUFFER_SIZE = 2 * 1024 * 1024;

async function runCommit(filename: ImageTarget, opts: CommitOptions, ctx: JobContext<CommitPhase>): Promise<CommitResult> {
  const open: OpenImageOptions = { ...opts, format: opts.format };
  // Find the base in the chain, then open it once, for writing, inside the overlay's chain.
  // Quiet: the writable open below reports what qemu's one open reports.
  const probe = await BlockDevice.open(filename, { ...open, readOnly: true, onWarning: undefined });
  let depth = 1;
  let drop = opts.drop === true;
  try {
    // qemu's one open is writable: a read-only format (dmg, bochs, cloop) fails there, before any backing check
    if ((opts.registry ?? defaultRegistry).find(probe.top.format)?.readOnly === true) {
      await probe.close();
      await (await BlockDevice.open(filename, { ...open, readOnly: false })).close();
    }
    // The image is open: qemu-img draws its first progress line here, before it looks for the base.
    ctx.progress.phase('commit', probe.size);
    if (opts.base !== undefined) {
      depth = await findBackingImage(probe.layers, opts.base);
      drop = true; // -b implies -d: the images between are invalid afterwards anyway
    } else if (probe.layers.length < 2) {
      throw new InvalidArgumentError('Image does not have a backing file');
    }
    // qemu makes the base writable by reopening it, which some drivers cannot do
    const base = probe.layers[depth];
    if (base && !probe.reopenable(depth)) throw new UnsupportedError(`Block format '${base.format}' used by node '${base.filename}' does not support reopening files`);
  } catch (err) {
    // qemu's one open is writable: its probed-raw warning comes before these errors.
    if (probe.top.probedRaw) opts.onWarning?.({ code: 'probed-raw', message: probedRawWarning(probe.top.path) });
    throw err;
  } finally {
    await probe.close();
  }
  const dev = await BlockDevice.open(filename, { ...open, readOnly: false, writableDepth: depth });
  try {
    const base = dev.below(depth);
    const before = base.size;
    if (dev.size > base.size) {
      // qemu 7.2's commit job grows the base as it starts (mirror_run, its error dropped): a base
      // format without truncate ends the job before anything is copied, in the errno's words.
      if (!base.canResize) throw new UnsupportedError('Block job failed: Operation not supported', { file: base.filename });
      await base.resize(dev.size, { shrink: false });
    }
    const counters: CopyCounters = { dataBytes: 0, zeroBytes: 0 };
    // qemu-img commit runs a block job: a failed read or write ends it as "Block job failed: <errno's words>".
    await asStep('Block job failed', copyImage([dev], base, {
      sparseSize: 4096,
      targetIsZero: false,
      targetHasBacking: true,
      statusAbove: depth,
      compress: false,
      unit: base.granularity,
      bufferSize: BUFFER_SIZE,
      parallel: 8,
      ordered: false,
      rateLimit: opts.rateLimit ?? 0,
      signal: ctx.signal,
      progress: ctx.progress,
    }, counters));
    // The base holds everything before the overlay lets go of it.
    await asStep('Block job failed', base.flush());
    const emptied = !drop && (await dev.makeEmpty());
    await dev.close();
    ctx.progress.finish();
    return { base: base.filename, baseDepth: depth, baseSize: { before, after: base.size }, ...counters, emptied };
  } catch (err) {
    await dev.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Commits an overlay into its backing file (or `base`, deeper in the
 * chain), as `qemu-img commit` does. Re-runnable after an interruption.
 *
 * @example
 * ```ts
 * await commit('snap.qcow2');                       // into snap's backing file, then empty snap
 * await commit('top.qcow2', { base: 'base.qcow2' }); // into base, top and mid keep their data
 * ```
 */
export function commit(filename: ImageTarget, options: CommitOptions = {}): Job<CommitResult, CommitPhase> {
  return new Job((ctx) => runCommit(filename, options, ctx), options);
}
