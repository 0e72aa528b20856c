/**
 * resize: change an image's virtual size, as `qemu-img resize` does. Sizes
 * may be absolute or relative (`+1G`, `-512M`); shrinking must be asked
 * for; preallocation applies to the grown part only. The format does the
 * work (its ImageResizer) in its crash-safe order.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { parseSizeBig } from '../core/sizes.js';
import { closingAfter } from '../core/settle.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import type { DriverRegistry } from '../block/registry.js';
import type { ResolverOptions } from '../block/resolver.js';

/** Preallocation modes `resize --preallocation` takes. */
export type ResizePreallocation = 'off' | 'metadata' | 'falloc' | 'full';

/** Phases of {@link resize}: `resize` (one step: the size change). */
export type ResizePhase = 'resize';

/** Options of {@link resize}. */
export interface ResizeOptions extends JobOptions<ResizePhase>, ResolverOptions, Pick<OpenImageOptions, 'locking'> {
  /** The image's format (`-f`); probed when omitted. */
  format?: string | undefined;
  /** Allow a smaller size (`--shrink`): data past the new end is lost. */
  shrink?: boolean | undefined;
  /** How to allocate the grown part (`--preallocation`, default `off`). */
  preallocation?: ResizePreallocation | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
  /** Receives qemu-img's warning for an image whose raw format was only guessed. */
  onWarning?: ((warning: { code: string; message: string }) => void) | undefined;
}

/** What {@link resize} did. */
export interface ResizeResult {
  /** The virtual size before. */
  readonly oldSize: number;
  /** The virtual size now. */
  readonly size: number;
}

const SIZE_SYNTAX =
  "Parameter 'size' expects a non-negative number below 2^64\n" +
  'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n' +
  'and exabytes, respectively.';

/** qemu's largest image (BDRV_MAX_LENGTH: INT64_MAX down to a multiple of 1 GiB). */
const BDRV_MAX_LENGTH = 2n ** 63n - 2n ** 30n;

/** `[+|-]size` → sign and magnitude (any size below 2^64, as qemu-img parses it), with qemu-img's error text. */
function parseResizeSize(size: number | string): { relative: -1 | 0 | 1; value: bigint } {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size)) throw new InvalidArgumentError(SIZE_SYNTAX, { reason: 'size-syntax' });
    return { relative: 0, value: BigInt(size) };
  }
  const relative = size.startsWith('+') ? 1 : size.startsWith('-') ? -1 : 0;
  const text = relative ? size.slice(1) : size;
  const r = parseSizeBig(text);
  if (!r.ok && r.reason === 'range') throw new InvalidArgumentError(`Value '${text}' is out of range for parameter 'size'`);
  if (!r.ok) throw new InvalidArgumentError(SIZE_SYNTAX, { reason: 'size-syntax' });
  return { relative, value: r.value };
}

/**
 * The new size as qemu-img computes it (int64 arithmetic: 2^63 and above
 * wrap to negative), refused when it is not positive.
 */
function newSize(current: number, relative: -1 | 0 | 1, value: bigint): bigint {
  const total = BigInt.asIntN(64, relative ? BigInt(current) + BigInt(relative) * value : value);
  if (total <= 0n) throw new InvalidArgumentError('New image size must be positive');
  return total;
}

/** vdisk's own limit (2^53 - 1 bytes, below qemu's BDRV_MAX_LENGTH), checked where qemu's driver would take over. */
function withinVdiskLimit(total: bigint): number {
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnsupportedError(`Image size ${total} is larger than vdisk supports (2^53 - 1)`);
  return Number(total);
}

async function runResize(target: ImageTarget, size: number | string, options: ResizeOptions, ctx: JobContext<ResizePhase>): Promise<ResizeResult> {
  const { relative, value } = parseResizeSize(size);
  const prealloc = options.preallocation ?? 'off';
  if (!['off', 'metadata', 'falloc', 'full'].includes(prealloc)) throw new InvalidArgumentError(`Invalid preallocation mode '${prealloc}'`);
  const dev = await BlockDevice.open(target, { ...options, readOnly: false, signal: ctx.signal });
  // A failed step is what qemu-img reports; closing after it (flushing the same full file) fails too.
  return closingAfter(async () => {
    const current = dev.size;
    const wanted = newSize(current, relative, value);
    if (wanted <= BigInt(current) && prealloc !== 'off') throw new InvalidArgumentError('Preallocation can only be used for growing images');
    if (BigInt(current) > wanted && !options.shrink) {
      throw new InvalidArgumentError('Use the shrink option to perform a shrink operation.', { reason: 'shrink-refused' });
    }
    // The block layer refuses a size above its maximum before it asks the driver.
    if (wanted > BDRV_MAX_LENGTH) throw new InvalidArgumentError(`offset(${wanted}) exceeds maximum(${BDRV_MAX_LENGTH})`);
    if (!dev.canResize) throw new UnsupportedError('Image format driver does not support resize');
    const total = withinVdiskLimit(wanted);
    // Cancelled before the image changes, or not at all: the format's resize runs to its end.
    ctx.signal.throwIfAborted();
    ctx.progress.phase('resize', 1);
    await dev.resize(total, { shrink: total < current, preallocation: prealloc });
    await dev.flush();
    ctx.progress.finish();
    return { oldSize: current, size: total };
  }, () => dev.close());
}

/**
 * Sets the virtual size of an image. Returns a job: await it, or cancel it
 * (before the image changes) with its `signal` option or `job.cancel()`.
 *
 * @param size - bytes, or a qemu-img size string; `+`/`-` make it relative to the current size
 * @throws {InvalidArgumentError} EINVAL: bad size, "New image size must be positive",
 *   shrinking without `shrink` (`reason: 'shrink-refused'`), preallocation while shrinking;
 *   {@link UnsupportedError} EUNSUPPORTED: "Image format driver does not support resize"
 * @example
 * ```ts
 * await resize('disk.qcow2', '+10G');
 * await resize('disk.raw', 1 << 30, { shrink: true });
 * ```
 */
export function resize(target: ImageTarget, size: number | string, options: ResizeOptions = {}): Job<ResizeResult, ResizePhase> {
  return new Job((ctx) => runResize(target, size, options, ctx), options);
}
