import { parseSize, withoutSizeWarnings } from '../../core/sizes.js';
import { commit } from '../../jobs/commit.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { checkCacheMode, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode } from '../progress-bar.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'cache', short: 't', long: ['cache'], arg: true },
  { key: 'base', short: 'b', long: ['base'], arg: true },
  { key: 'drop', short: 'd', long: ['drop'] },
  // Checked as it comes, as img_commit's getopt loop does.
  { key: 'rate', short: 'r', long: ['rate-limit'], arg: true, check: (v) => void parseSize(v, 'rate limit') },
  PROGRESS_OPTION,
  { key: 'quiet', short: 'q', long: ['quiet'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

/** `vdisk commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename` — prints `Image committed.` */
export async function commitCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const quiet = args.flags.has('quiet');
    checkCacheMode(last(args, 'cache'));
    let rateLimit: number | undefined;
    const rate = last(args, 'rate');
    if (rate !== undefined) rateLimit = withoutSizeWarnings(() => parseSize(rate, 'rate limit'));
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io);
    const job = commit(filename, {
      format,
      base: last(args, 'base'),
      drop: args.flags.has('drop'),
      rateLimit,
      onWarning: warningPrinter(io),
      ...trustFrom(args), ...secretsFrom(args),
    });
    // qemu-img sets its progress up once the image is open: an open failure draws nothing.
    await awaitWithProgress(job, io, progressMode(args, quiet), { first: 'first-event' });
    if (!quiet) io.stdout('Image committed.\n');
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
