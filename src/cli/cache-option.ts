/**
 * `-t` / `-T` on the command line: qemu-img's cache mode names (and `off`)
 * with its error wording, for every command that takes them (convert,
 * compare, check, commit, rebase, amend, bench).
 */
import { parseCacheMode, type CacheMode } from '../block/types.js';

/**
 * The cache mode given with `-t` (`which` = 'target', the default) or `-T`
 * (`which` = 'source'), or undefined when the option was not given (the job
 * then uses `writeback`). Pass the result as the job's cache option.
 *
 * @example
 * ```ts
 * const targetCache = cacheOption(last(args, 'cache'));            // -t: "Invalid cache option: x"
 * const sourceCache = cacheOption(last(args, 'srcCache'), 'source'); // -T: "Invalid source cache option: x"
 * ```
 * @throws {InvalidArgumentError} EINVAL with qemu-img's message for an unknown mode
 */
export function cacheOption(value: string | undefined, which: 'target' | 'source' = 'target'): CacheMode | undefined {
  if (value === undefined) return undefined;
  return parseCacheMode(value, which === 'source' ? 'source cache' : 'cache');
}
