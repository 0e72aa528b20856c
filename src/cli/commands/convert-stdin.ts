/**
 * `vdisk convert [-f FMT] [-O fmt] [-o ...] - OUT`: the image read from
 * standard input, forward only (jobs/convert-from-stream.ts). Options that
 * need random access to the source, or another target than a new one,
 * are refused.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { convertFromStream } from '../../jobs/convert-from-stream.js';
import { last, type ParsedArgs } from '../args.js';
import { PROG, warningPrinter, type CliIo } from '../context.js';
import { awaitWithProgress, progressMode } from '../progress-bar.js';
import { ingestFrom } from '../ingest-options.js';
import type { CacheMode } from '../../core/cache-mode.js';

/** The source operand that means standard input. */
export const STDIN_OPERAND = '-';

/** Flags that make no sense for an image read forward from stdin. */
const REFUSED: readonly [string, string][] = [
  ['noCreate', '-n'],
  ['compress', '-c'],
  ['copyRange', '-C'],
  ['salvage', '--salvage'],
  ['bitmaps', '--bitmaps'],
  ['imageOpts', '--image-opts'],
  ['targetImageOpts', '--target-image-opts'],
];

/** True when the sources name stdin; refuses stdin among several sources. */
export function readsStdin(sources: readonly string[]): boolean {
  if (!sources.includes(STDIN_OPERAND)) return false;
  if (sources.length > 1) throw new InvalidArgumentError(`'${STDIN_OPERAND}' (standard input) can only be the single source of convert`);
  return true;
}

/** Runs convert with the image read from standard input. */
export async function convertStdin(args: ParsedArgs, io: CliIo, target: string, opts: { targetFormat: string; options: string[] | undefined; targetCache: CacheMode | undefined; parallel: number | undefined }): Promise<number> {
  for (const [key, flag] of REFUSED) if (args.flags.has(key)) throw new InvalidArgumentError(`${flag} cannot be used when the source is standard input`);
  for (const key of ['backing', 'backingFormat', 'snapshot']) if (last(args, key) !== undefined) throw new InvalidArgumentError(`-B, -F and -l cannot be used when the source is standard input`);
  const stdin = process.stdin;
  if (stdin.isTTY) throw new InvalidArgumentError('Refusing to read an image from a terminal: standard input must be a pipe or a file');
  const job = convertFromStream(stdin, target, {
    sourceFormat: last(args, 'format'),
    targetFormat: opts.targetFormat,
    options: opts.options,
    targetCache: opts.targetCache,
    parallel: opts.parallel,
    onWarning: warningPrinter(io),
    ...ingestFrom(args),
  });
  if (!args.flags.has('quiet')) job.on('warning', (w) => io.stderr(`${PROG}: warning: ${w.message}\n`));
  await awaitWithProgress(job, io, progressMode(args, args.flags.has('quiet')));
  return 0;
}
