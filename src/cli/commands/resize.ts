import { InvalidArgumentError, VdiskError } from '../../core/errors.js';
import { resize, type ResizePreallocation } from '../../jobs/resize.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { PROG, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const PREALLOC = new Set(['off', 'metadata', 'falloc', 'full']);

function checkPrealloc(mode: string): void {
  if (!PREALLOC.has(mode)) throw new InvalidArgumentError(`Invalid preallocation mode '${mode}'`);
}

/** qemu-img 7.2's options (no `-U`). */
const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', arg: true },
  { key: 'quiet', short: 'q' },
  { key: 'shrink', long: ['shrink'] },
  // Checked as it comes, as img_resize's getopt loop does.
  { key: 'preallocation', long: ['preallocation'], arg: true, check: checkPrealloc },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

const SHRINK_WARNING =
  "Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.";

/**
 * `vdisk resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size`
 *
 * As qemu-img, the size is the last word, taken before the options are
 * parsed, so `resize disk -1G` and `resize disk -- -1G` both work.
 */
export async function resizeCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    if (argv.length < 2) throw new UsageError('Not enough arguments');
    const size = argv[argv.length - 1] as string;
    const args = parseArgs(argv.slice(0, -1), SPECS);
    const prealloc = last(args, 'preallocation');
    if (args.operands.length !== 1) throw new UsageError('Expecting image file name and size');
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io);
    try {
      await resize(filename, size, {
        format,
        shrink: args.flags.has('shrink'),
        preallocation: prealloc as ResizePreallocation | undefined,
        onWarning: warningPrinter(io),
        ...trustFrom(args), ...secretsFrom(args),
      });
    } catch (err) {
      const code = reportError(io, err);
      if (err instanceof VdiskError && err.reason === 'shrink-refused') io.stderr(`${PROG}: warning: ${SHRINK_WARNING}\n`);
      return code;
    }
    if (!args.flags.has('quiet')) io.stdout('Image resized.\n');
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
