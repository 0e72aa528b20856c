import { InvalidArgumentError } from '../../core/errors.js';
import { parseSize, withoutSizeWarnings } from '../../core/sizes.js';
import { measure } from '../../jobs/measure.js';
import { toQemuJson } from '../../jobs/qemu-output.js';
import { optionLists, parseArgs, last, UsageError, type OptSpec } from '../args.js';
import { cvtnum, outputFormat, reportError, warningPrinter, type CliIo } from '../context.js';
import { helpText } from '../help.js';
import { imageArg } from '../image-opts.js';
import { parseSnapshotParam } from '../snapshot-param.js';
import { formatQemuJson } from '../qemu-json.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', arg: true },
  { key: 'options', short: 'o', arg: true, multi: true },
  { key: 'targetFormat', short: 'O', arg: true },
  // -l, --output and --size are checked as they come, as img_measure's getopt loop does.
  { key: 'snapshot', short: 'l', arg: true, check: (v) => void parseSnapshotParam(v) },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  { key: 'output', long: ['output'], arg: true, check: (v) => void outputFormat(v) },
  { key: 'size', long: ['size'], arg: true, check: (v) => void parseSize(v, 'image size') },
  // vdisk's own: the exact length of the image streamed (convert … -), with -c and -S as convert takes them.
  { key: 'exact', long: ['exact'] },
  { key: 'compress', short: 'c', long: ['compress'] },
  { key: 'sparse', short: 'S', long: ['sparse-size'], arg: true },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
];

/** `vdisk measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [-f fmt] [--image-opts] [-l snapshot] filename]` */
export async function measureCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const optionStrings = optionLists(args);
    const output = outputFormat(last(args, 'output'));
    const s = last(args, 'size');
    const size = s === undefined ? undefined : withoutSizeWarnings(() => parseSize(s, 'image size'));
    if (args.operands.length > 1) throw new InvalidArgumentError('At most one filename argument is allowed.');
    const operand = args.operands[0];
    const format = last(args, 'format');
    const imageOpts = args.flags.has('imageOpts');
    const snapshotArg = last(args, 'snapshot');
    if (operand === undefined && (imageOpts || format !== undefined || snapshotArg !== undefined)) {
      throw new InvalidArgumentError('--image-opts, -f, and -l require a filename argument.');
    }
    if (operand !== undefined && size !== undefined) throw new InvalidArgumentError('--size N cannot be used together with a filename.');
    if (operand === undefined && size === undefined) throw new InvalidArgumentError('Either --size N or one filename must be specified.');
    const exact = args.flags.has('exact');
    if (!exact && (args.flags.has('compress') || last(args, 'sparse') !== undefined)) throw new InvalidArgumentError('-c and -S require --exact');
    if (exact && operand === undefined) throw new InvalidArgumentError('--exact requires a filename argument.');
    const sparse = last(args, 'sparse');
    let sparseSize: number | undefined;
    if (sparse !== undefined && (sparseSize = cvtnum(io, 'buffer size for sparse output', sparse)) === undefined) return 1;
    const { filename, format: sourceFormat } = operand === undefined ? { filename: undefined, format } : imageArg(operand, format, imageOpts, io, args.flags.has('forceShare'));
    const info = await measure(filename, {
      size,
      sourceFormat,
      targetFormat: last(args, 'targetFormat'),
      options: optionStrings.length > 0 ? optionStrings : undefined,
      snapshot: snapshotArg === undefined ? undefined : parseSnapshotParam(snapshotArg),
      forceShare: args.flags.has('forceShare'),
      exact,
      compress: args.flags.has('compress'),
      sparseSize,
      onWarning: warningPrinter(io),
      ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args),
    });
    if (output === 'human') {
      io.stdout(`required size: ${info.required}\nfully allocated size: ${info.fullyAllocated}\n`);
      if (info.bitmaps !== undefined) io.stdout(`bitmaps size: ${info.bitmaps}\n`);
      if (info.exactSize !== undefined) io.stdout(`exact size: ${info.exactSize}\n`);
    } else {
      io.stdout(formatQemuJson(toQemuJson(info)) + '\n');
    }
    return 0;
  } catch (err) {
    // qemu-img measure's getopt is not silent and its '?' case prints the help, exiting 0 (as qemu-img 7.2 does).
    if (err instanceof UsageError && err.getopt !== undefined) {
      io.stderr(`measure: ${err.getopt}\n`);
      io.stdout(helpText());
      return 0;
    }
    return reportError(io, err);
  }
}
