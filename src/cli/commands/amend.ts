import { formatOptionHelp, isHelpRequest, parseOptionString } from '../../core/options.js';
import { amend, amendOptionSpecs } from '../../jobs/amend.js';
import { info } from '../../jobs/info.js';
import { optionLists, parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { checkCacheMode, PROG, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode } from '../progress-bar.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'options', short: 'o', long: ['options'], arg: true, multi: true },
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'cache', short: 't', long: ['cache'], arg: true },
  PROGRESS_OPTION,
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'force', long: ['force'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

function printHelp(io: CliIo, format: string): number {
  try {
    const specs = amendOptionSpecs(format);
    io.stdout(formatOptionHelp(`Amend options for '${format}':`, specs));
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

/** `vdisk amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename` — silent on success. */
export async function amendCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const quiet = args.flags.has('quiet');
    const optionStrings = optionLists(args);
    if (optionStrings.length === 0) throw new UsageError('Must specify options (-o)');
    const help = optionStrings.some((o) => isHelpRequest(parseOptionString(o)));
    const fmtArg = last(args, 'format');
    if (help && fmtArg !== undefined) return printHelp(io, fmtArg);
    checkCacheMode(last(args, 'cache'));
    if (args.operands.length !== 1) {
      // qemu-img amend reports this without the usage hint
      io.stderr(`${PROG}: Expecting one image file name\n`);
      return 1;
    }
    const { filename, format } = imageArg(args.operands[0] as string, fmtArg, args.flags.has('imageOpts'), io);
    if (help) {
      // Without -f the format comes from the image.
      const [found] = await info(filename, { format, ...trustFrom(args), ...secretsFrom(args) });
      return printHelp(io, found?.format ?? 'raw');
    }
    const job = amend(filename, { options: optionStrings, format, force: args.flags.has('force'), onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args) });
    await awaitWithProgress(job, io, progressMode(args, quiet));
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
