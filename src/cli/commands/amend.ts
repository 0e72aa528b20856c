import { formatOptionHelp, isHelpRequest, parseOptionString } from '../../core/options.js';
import { amend, amendOptionSpecs } from '../../jobs/amend.js';
import { info } from '../../jobs/info.js';
import { probedRawWarning } from '../../block/chain.js';
import { isJsonName } from '../../core/image-options.js';
import { optionLists, parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { checkCacheMode, PROG, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode, qemuProgressPrinter } from '../progress-bar.js';
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
  /** Whether qemu-img's progress is set up (from here on it ends with a newline, drawn or not). */
  let progressSetUp = false;
  const end = (status: number): number => {
    if (progressSetUp) io.stdout('\n');
    return status;
  };
  try {
    const args = parseArgs(argv, SPECS);
    const quiet = args.flags.has('quiet');
    const optionStrings = optionLists(args);
    if (optionStrings.length === 0) throw new UsageError('Must specify options (-o)');
    // img_amend sets its progress up here; it draws the first line once the options are accepted.
    const mode = progressMode(args, quiet);
    progressSetUp = mode === 'bar';
    const help = optionStrings.some((o) => isHelpRequest(parseOptionString(o)));
    const fmtArg = last(args, 'format');
    if (help && fmtArg !== undefined) return end(printHelp(io, fmtArg));
    if (args.operands.length !== 1) {
      // qemu-img amend reports this without the usage hint
      io.stderr(`${PROG}: Expecting one image file name\n`);
      return end(1);
    }
    checkCacheMode(last(args, 'cache'));
    const { filename, format } = imageArg(args.operands[0] as string, fmtArg, args.flags.has('imageOpts'), io);
    if (help) {
      // Without -f the format comes from the image.
      const [found] = await info(filename, { format, ...trustFrom(args), ...secretsFrom(args) });
      // img_amend opens the image writable before it looks at the options: a probed raw image is warned about.
      const probed = format === undefined && !args.flags.has('imageOpts') && typeof filename === 'string' && !isJsonName(filename);
      if (probed && found?.format === 'raw') warningPrinter(io)({ code: 'probed-raw', message: probedRawWarning(filename) });
      return end(printHelp(io, found?.format ?? 'raw'));
    }
    // The driver's status callbacks are drawn as img_amend draws them, each one through qemu's rule.
    const onStatus = mode === 'bar' ? qemuProgressPrinter(io) : undefined;
    const job = amend(filename, { options: optionStrings, format, force: args.flags.has('force'), onStatus, onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args) });
    // From the first line on, img_amend draws 100% whatever bdrv_amend_options returns.
    progressSetUp = false;
    await awaitWithProgress(job, io, mode, { first: 'first-event', newlineBeforeFirst: true, hundredOnFailure: () => true, drawSteps: false });
    return 0;
  } catch (err) {
    const status = reportError(io, err);
    return end(status);
  }
}
