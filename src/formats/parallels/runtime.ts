/**
 * The parallels driver's open options (QEMU's parallels_runtime_opts):
 * how far the file is grown ahead when a write allocates at its end.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { typeQemuOpts } from '../../core/options.js';
import type { OpenOptions, OptionSpec } from '../driver.js';

/** `prealloc-size` and `prealloc-mode`, in QEMU's order with its defaults. */
export const PRL_RUNTIME_OPTIONS: readonly OptionSpec[] = [
  { name: 'prealloc-size', type: 'size', help: 'Preallocation size on image expansion', default: '128M' },
  { name: 'prealloc-mode', type: 'string', help: 'Preallocation mode on image expansion (allowed values: falloc, truncate)', default: 'falloc' },
];

/** How the file grows ahead of new clusters. */
export interface PrlPrealloc {
  readonly mode: 'falloc' | 'truncate';
  /** Bytes grown beyond the new clusters. */
  readonly bytes: number;
}

/**
 * The options as parallels_open reads them: the size in whole sectors and
 * at least one cluster (`tracks` sectors).
 *
 * @throws {InvalidArgumentError} "invalid parameter value: X", a size that does not parse
 */
export function preallocOptions(runtime: OpenOptions['runtime'], tracks: number): PrlPrealloc {
  const opts = typeQemuOpts(PRL_RUNTIME_OPTIONS, runtime ?? []);
  const size = opts.get('prealloc-size');
  const sectors = size === undefined ? 128n * 2048n : BigInt(size as bigint) / 512n;
  const mode = opts.get('prealloc-mode') ?? 'falloc';
  if (mode !== 'falloc' && mode !== 'truncate') throw new InvalidArgumentError(`invalid parameter value: ${String(mode)}`);
  // a size beyond what a file can hold fails when the file is grown, as in QEMU
  const bytes = (sectors > BigInt(tracks) ? sectors : BigInt(tracks)) * 512n;
  return { mode, bytes: bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes) };
}
