/**
 * compare: do two images show the guest the same bytes? Block status skips
 * what both sides know to be zero, so sparse images compare fast. Offsets
 * and messages follow qemu-img: the first differing 512-byte sector.
 */
import { throwIfAborted } from '../core/abort.js';
import { isZero } from '../core/bytes.js';
import { VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { BlockDevice } from '../block/device.js';
import type { BlockStatus } from '../block/block-status.js';
import type { ResolverOptions } from '../block/resolver.js';
import type { CacheMode } from '../io/cache-mode.js';

/** Options of {@link compare}. */
export interface CompareOptions extends JobOptions, ResolverOptions {
  /** Format of the first image (`-f`). */
  formatA?: string | undefined;
  /** Format of the second image (`-F`). */
  formatB?: string | undefined;
  /** Also fail on a size or allocation difference (`-s`). */
  strict?: boolean | undefined;
  /** Read images another process writes (`-U`). */
  forceShare?: boolean | undefined;
  /** Cache mode of both images and their backing files (`-T`; default `writeback`). */
  cache?: CacheMode | undefined;
}

/** Why two images differ. */
export type CompareDifference = 'content' | 'size' | 'block-status';

/** What {@link compare} found. */
export interface CompareResult {
  /** True when the guest sees the same bytes (and, in strict mode, the same sizes and allocation). */
  readonly identical: boolean;
  /** What differed, when something did. */
  readonly difference?: CompareDifference | undefined;
  /** Offset of the first differing 512-byte sector (content) or of the differing block status (strict). */
  readonly offset?: number | undefined;
  /** The sizes differ (fine in non-strict mode when the extra part reads as zeros). */
  readonly sizeMismatch: boolean;
  /** The difference lies in the part only the larger image has. */
  readonly inTail?: boolean | undefined;
}

/** Which exit status qemu-img gives a failed compare step. */
function stageError(err: unknown, exit: 2 | 3 | 4, message?: string): unknown {
  if (!(err instanceof VdiskError)) return err;
  return new (err.constructor as new (m: string, d: object) => VdiskError)(message ?? err.message, { file: err.file, cause: err, data: { ...err.data, compareExit: exit }, hint: err.hint });
}

const IO_BUF = 2 * 1024 * 1024;
const SECTOR = 512;

/** qemu's BDRV_BLOCK_* bits, for strict mode's exact comparison. */
function flags(st: BlockStatus): number {
  return (st.data ? 1 : 0) | (st.zero ? 2 : 0) | (st.hostOffset !== undefined ? 4 : 0) | (st.present ? 8 : 0);
}

function firstDifferentSector(a: Uint8Array, b: Uint8Array): number {
  for (let off = 0; off < a.length; off += SECTOR) {
    const end = Math.min(a.length, off + SECTOR);
    if (Buffer.compare(a.subarray(off, end), b.subarray(off, end)) !== 0) return off;
  }
  return -1;
}

function firstNonZeroSector(a: Uint8Array): number {
  for (let off = 0; off < a.length; off += SECTOR) if (!isZero(a.subarray(off, Math.min(a.length, off + SECTOR)))) return off;
  return -1;
}

async function status(dev: BlockDevice, offset: number, length: number): Promise<BlockStatus> {
  try {
    return await dev.blockStatus(offset, length);
  } catch (err) {
    throw stageError(err, 3, `Sector allocation test failed for ${dev.filename}`);
  }
}

async function readAt(dev: BlockDevice, offset: number, buf: Uint8Array): Promise<void> {
  try {
    await dev.read(offset, buf);
  } catch (err) {
    throw stageError(err, 4, `Error while reading offset ${offset} of ${dev.filename}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function compareCommon(a: BlockDevice, b: BlockDevice, strict: boolean, ctx: JobContext): Promise<CompareResult | undefined> {
  const common = Math.min(a.size, b.size);
  const sizeMismatch = a.size !== b.size;
  for (let offset = 0; offset < common; ) {
    throwIfAborted(ctx.signal);
    const s1 = await status(a, offset, common - offset);
    const s2 = await status(b, offset, common - offset);
    let chunk = Math.min(s1.length, s2.length);
    if (strict && flags(s1) !== flags(s2)) return { identical: false, difference: 'block-status', offset, sizeMismatch };
    if (!(s1.zero && s2.zero)) {
      chunk = Math.min(chunk, IO_BUF);
      if (s1.present === s2.present) {
        if (s1.present) {
          const b1 = new Uint8Array(chunk);
          const b2 = new Uint8Array(chunk);
          await readAt(a, offset, b1);
          await readAt(b, offset, b2);
          const at = firstDifferentSector(b1, b2);
          if (at >= 0) return { identical: false, difference: 'content', offset: offset + at, sizeMismatch };
        }
      } else {
        const side = s1.present ? a : b;
        const buf = new Uint8Array(chunk);
        await readAt(side, offset, buf);
        const at = firstNonZeroSector(buf);
        if (at >= 0) return { identical: false, difference: 'content', offset: offset + at, sizeMismatch };
      }
    }
    offset += chunk;
    ctx.progress.advance(chunk);
  }
  return undefined;
}

async function compareTail(over: BlockDevice, from: number, ctx: JobContext): Promise<CompareResult | undefined> {
  for (let offset = from; offset < over.size; ) {
    throwIfAborted(ctx.signal);
    const st = await status(over, offset, over.size - offset);
    let chunk = st.length;
    if (st.present && !st.zero) {
      chunk = Math.min(chunk, IO_BUF);
      const buf = new Uint8Array(chunk);
      await readAt(over, offset, buf);
      const at = firstNonZeroSector(buf);
      if (at >= 0) return { identical: false, difference: 'content', offset: offset + at, sizeMismatch: true, inTail: true };
    }
    offset += chunk;
    ctx.progress.advance(chunk);
  }
  return undefined;
}

async function runCompare(fileA: string, fileB: string, opts: CompareOptions, ctx: JobContext): Promise<CompareResult> {
  const open = async (name: string, format: string | undefined): Promise<BlockDevice> => {
    try {
      return await BlockDevice.open(name, { ...opts, format, readOnly: true });
    } catch (err) {
      throw stageError(err, 2);
    }
  };
  const a = await open(fileA, opts.formatA);
  try {
    const b = await open(fileB, opts.formatB);
    try {
      const sizeMismatch = a.size !== b.size;
      if (opts.strict && sizeMismatch) return { identical: false, difference: 'size', sizeMismatch };
      ctx.progress.phase('compare', Math.max(a.size, b.size));
      const found = await compareCommon(a, b, opts.strict === true, ctx);
      if (found) return found;
      if (sizeMismatch) {
        const tail = await compareTail(a.size > b.size ? a : b, Math.min(a.size, b.size), ctx);
        if (tail) return tail;
      }
      ctx.progress.finish();
      return { identical: true, sizeMismatch };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

/**
 * Compares two images' guest-visible content, as `qemu-img compare` does.
 * Errors carry `data.compareExit` (2 open, 3 block status, 4 read) for
 * qemu-img's exit statuses.
 *
 * @example
 * ```ts
 * const r = await compare('a.qcow2', 'b.raw');
 * if (!r.identical) console.log('first difference at', r.offset);
 * ```
 */
export function compare(fileA: string, fileB: string, options: CompareOptions = {}): Job<CompareResult> {
  return new Job((ctx) => runCompare(fileA, fileB, options, ctx), options);
}
