/**
 * qemu's cache modes for file-backed images (`-t` / `-T`): whether the page
 * cache is bypassed (O_DIRECT), whether every write is synchronous
 * (O_DSYNC), and whether flush() reaches the disk at all.
 */
import { InvalidArgumentError } from './errors.js';

/**
 * A cache mode, as qemu names them:
 *
 * | mode           | page cache           | each write      | flush()        |
 * |----------------|----------------------|-----------------|----------------|
 * | `writeback`    | used                 | cached          | fdatasync      |
 * | `writethrough` | used                 | O_DSYNC         | fdatasync      |
 * | `none`         | bypassed (O_DIRECT)  | device cache    | fdatasync      |
 * | `directsync`   | bypassed (O_DIRECT)  | O_DSYNC         | fdatasync      |
 * | `unsafe`       | used                 | cached          | does nothing   |
 *
 * vdisk's default is `writeback` for every job, convert included (qemu-img
 * convert defaults its target to `unsafe`; vdisk always flushes unless told).
 */
export type CacheMode = 'writeback' | 'writethrough' | 'none' | 'directsync' | 'unsafe';

/** What a cache mode means for a file's open flags and flushes. */
export interface CacheSemantics {
  /** Open with O_DIRECT (aligned I/O, page cache bypassed). */
  readonly direct: boolean;
  /** Open with O_DSYNC (every write durable before it completes). */
  readonly dsync: boolean;
  /** flush() is a no-op. */
  readonly noFlush: boolean;
}

const SEMANTICS: Readonly<Record<CacheMode, CacheSemantics>> = {
  writeback: { direct: false, dsync: false, noFlush: false },
  writethrough: { direct: false, dsync: true, noFlush: false },
  none: { direct: true, dsync: false, noFlush: false },
  directsync: { direct: true, dsync: true, noFlush: false },
  unsafe: { direct: false, dsync: false, noFlush: true },
};

/** The default cache mode of every vdisk job. */
export const DEFAULT_CACHE_MODE: CacheMode = 'writeback';

/** The flags and flush behaviour of `mode`. */
export function cacheSemantics(mode: CacheMode = DEFAULT_CACHE_MODE): CacheSemantics {
  return SEMANTICS[mode];
}

/** The cache mode `name` names (`off` is `none`), or undefined for a name qemu does not know. */
export function cacheModeNamed(name: string): CacheMode | undefined {
  if (name === 'off') return 'none';
  return Object.hasOwn(SEMANTICS, name) ? (name as CacheMode) : undefined;
}

/**
 * Parses a cache mode name as qemu's bdrv_parse_cache_mode does (`off` is
 * another name for `none`). `what` words the error: `cache` gives
 * "Invalid cache option: x", `source cache` "Invalid source cache option: x".
 *
 * @example
 * ```ts
 * parseCacheMode('off'); // 'none'
 * ```
 * @throws {InvalidArgumentError} EINVAL for an unknown name
 */
export function parseCacheMode(name: string, what = 'cache'): CacheMode {
  const mode = cacheModeNamed(name);
  if (mode !== undefined) return mode;
  throw new InvalidArgumentError(`Invalid ${what} option: ${name}`, { data: { cache: name } });
}
