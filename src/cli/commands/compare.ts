import { InvalidArgumentError, VdiskError } from '../../core/errors.js';
import { compare } from '../../jobs/compare.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { cacheOption } from '../cache-option.js';
import { reportError, warningPrinter, type CliIo } from '../context.js';
import { parseImageOpts } from '../image-opts.js';
import type { ImageTarget } from '../../block/chain.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode } from '../progress-bar.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { objectOption, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'formatA', short: 'f', long: ['a-format'], arg: true },
  { key: 'formatB', short: 'F', long: ['b-format'], arg: true },
  { key: 'strict', short: 's', long: ['strict'] },
  { key: 'cache', short: 'T', long: ['cache'], arg: true },
  PROGRESS_OPTION,
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  objectOption(2),
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
];

/** `vdisk compare [-f fmt] [-F fmt] [-T cache] [-p] [-q] [-s] [-U] filename1 filename2` — exit 0 same, 1 differ, 2 open error, 3 block status error, 4 read error. */
export async function compareCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let quiet = false;
  /** Set while a failure must end qemu-img's set-up, undrawn progress line. */
  let progressSetUp = false;
  try {
    const args = parseArgs(argv, SPECS);
    // qemu creates --object secrets inside its getopt loop, and img_compare exits 2 when one fails.
    let secrets: ReturnType<typeof secretsFrom>;
    try {
      secrets = secretsFrom(args);
    } catch (err) {
      reportError(io, err);
      return 2;
    }
    quiet = args.flags.has('quiet');
    if (args.operands.length !== 2) throw new UsageError('Expecting two image file names');
    const progress = progressMode(args, quiet);
    // img_compare sets its progress up here and draws the first line once both images are open:
    // a failure before then ends with a newline only.
    progressSetUp = progress === 'bar';
    // qemu-img compare exits 2 for a bad -T, like an open failure
    let cache;
    try {
      cache = cacheOption(last(args, 'cache'), 'source');
    } catch (err) {
      if (progressSetUp) io.stdout('\n');
      reportError(io, err);
      return 2;
    }
    const [nameA, nameB] = args.operands as [string, string];
    const formatA = last(args, 'formatA');
    const formatB = last(args, 'formatB');
    let fileA: ImageTarget = nameA;
    let fileB: ImageTarget = nameB;
    if (args.flags.has('imageOpts')) {
      // qemu-img refuses it when opening the image, so the exit status is compare's open failure.
      if (formatA !== undefined || formatB !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive', { exitCode: 2 });
      fileA = parseImageOpts(nameA, io, args.flags.has('forceShare'));
      fileB = parseImageOpts(nameB, io, args.flags.has('forceShare'));
    }
    const say = (line: string): void => {
      if (!quiet) io.stdout(line + '\n');
    };
    const printWarning = warningPrinter(io);
    const job = compare(fileA, fileB, { formatA, formatB, strict: args.flags.has('strict'), cache, forceShare: args.flags.has('forceShare'), onWarning: (w) => (w.code === 'size-mismatch' ? say(`Warning: ${w.message}`) : printWarning(w)), ...trustFrom(args), ...networkFrom(args), ...secrets });
    // qemu-img prints the result while the progress line is still open and ends the line last;
    // it draws its progress in steps of more than 2% (qemu_progress_init(progress, 2.0)).
    progressSetUp = false;
    const result = await awaitWithProgress(job, io, progress, { open: true, minSkip: 2, first: 'first-event', newlineBeforeFirst: true });
    if (result.difference === 'size') say('Strict mode: Image size mismatch!');
    else if (result.difference === 'block-status') say(`Strict mode: Offset ${result.offset} block status mismatch!`);
    else if (result.digest !== undefined && !result.identical) say(`Content mismatch: the image's content has ${result.digest}`);
    else say(result.identical ? 'Images are identical.' : `Content mismatch at offset ${result.offset}!`);
    if (progress === 'bar') io.stdout('\n');
    return result.identical ? 0 : 1;
  } catch (err) {
    if (progressSetUp) io.stdout('\n');
    const exit = err instanceof VdiskError ? err.exitCode : undefined;
    const code = reportError(io, err);
    return exit ?? code;
  }
}
