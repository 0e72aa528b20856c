import { VdiskError } from '../../core/errors.js';
import { rebase } from '../../jobs/rebase.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { checkCacheMode, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { PROGRESS_OPTION, awaitWithProgress, drawFirstLine, progressMode } from '../progress-bar.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

/** qemu-img 7.2's options, plus newer qemu's `-c` and `-B` (backing format). */
const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'cache', short: 't', long: ['cache'], arg: true },
  { key: 'backingCache', short: 'T', long: ['backing-cache'], arg: true },
  { key: 'backing', short: 'b', long: ['backing'], arg: true },
  { key: 'backingFormat', short: 'F', long: ['backing-format'], arg: true },
  { key: 'backingFormat', short: 'B', arg: true },
  { key: 'unsafe', short: 'u', long: ['backing-unsafe'] },
  { key: 'compress', short: 'c', long: ['compress'] },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  PROGRESS_OPTION,
  { key: 'quiet', short: 'q', long: ['quiet'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

/** `vdisk rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] [-c] -b backing_file [-F backing_fmt] filename` — silent on success. */
export async function rebaseCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const quiet = args.flags.has('quiet');
    // img_rebase's order after its getopt loop: the operand count, -b or -u, then -t and -T.
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const unsafe = args.flags.has('unsafe');
    const backing = last(args, 'backing');
    if (!unsafe && backing === undefined) throw new UsageError('Must specify backing file (-b) or use unsafe mode (-u)');
    // img_rebase draws its first progress line before it checks -t and -T or opens anything.
    const mode = progressMode(args, quiet);
    drawFirstLine(io, mode);
    let job: ReturnType<typeof rebase>;
    try {
      checkCacheMode(last(args, 'cache'));
      checkCacheMode(last(args, 'backingCache'), 'source');
      // img_rebase opens the image itself without force-share (-U is for the backing files it reads).
      const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io);
      job = rebase(filename, backing, {
        format,
        backingFormat: last(args, 'backingFormat'),
        unsafe,
        compress: args.flags.has('compress'),
        onWarning: warningPrinter(io),
        ...trustFrom(args), ...secretsFrom(args),
      });
    } catch (err) {
      if (mode === 'bar') io.stdout('\n');
      throw err;
    }
    // Steps of more than 2% (qemu_progress_init(progress, 2.0)); 100% is drawn even when the
    // backing file could not be changed (the job's last action), as img_rebase draws it.
    await awaitWithProgress(job, io, mode, { minSkip: 2, first: 'drawn', hundredOnFailure: (err) => err instanceof VdiskError && err.stage === 'action' });
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
