import { InvalidArgumentError } from '../../core/errors.js';
import { parseSize } from '../../core/sizes.js';
import { measure } from '../../jobs/measure.js';
import { optionLists, parseArgs, last, type OptSpec } from '../args.js';
import { cvtnum, outputFormat, reportError, type CliIo } from '../context.js';
import { parseImageOpts } from '../image-opts.js';
import { parseSnapshotParam } from '../snapshot-param.js';
import { formatQemuJson } from '../qemu-json.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', arg: true },
  { key: 'options', short: 'o', arg: true, multi: true },
  { key: 'targetFormat', short: 'O', arg: true },
  { key: 'snapshot', short: 'l', arg: true },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  { key: 'object', long: ['object'], arg: true, multi: true },
  { key: 'imageOpts', long: ['image-opts'] },
  { key: 'output', long: ['output'], arg: true },
  { key: 'size', long: ['size'], arg: true },
  ...TRUST_OPTIONS,
];

/** `vdisk measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [-f fmt] [--image-opts] [-l snapshot] filename]` */
export async function measureCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const optionStrings = optionLists(args);
    const output = outputFormat(last(args, 'output'));
    let size: number | undefined;
    const s = last(args, 'size');
    if (s !== undefined && (size = cvtnum(io, 'image size', s, (v) => parseSize(v, 'image size'))) === undefined) return 1;
    if (args.operands.length > 1) throw new InvalidArgumentError('At most one filename argument is allowed.');
    let filename = args.operands[0];
    let format = last(args, 'format');
    const imageOpts = args.flags.has('imageOpts');
    const snapshotArg = last(args, 'snapshot');
    if (filename === undefined && (imageOpts || format !== undefined || snapshotArg !== undefined)) {
      throw new InvalidArgumentError('--image-opts, -f, and -l require a filename argument.');
    }
    if (filename !== undefined && size !== undefined) throw new InvalidArgumentError('--size N cannot be used together with a filename.');
    if (filename === undefined && size === undefined) throw new InvalidArgumentError('Either --size N or one filename must be specified.');
    if (filename !== undefined && imageOpts) {
      if (format !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive');
      ({ filename, format } = parseImageOpts(filename));
    }
    const info = await measure(filename, {
      size,
      sourceFormat: format,
      targetFormat: last(args, 'targetFormat'),
      options: optionStrings.length > 0 ? optionStrings : undefined,
      snapshot: snapshotArg === undefined ? undefined : parseSnapshotParam(snapshotArg),
      forceShare: args.flags.has('forceShare'),
      ...trustFrom(args),
    });
    if (output === 'human') {
      io.stdout(`required size: ${info.required}\nfully allocated size: ${info.fullyAllocated}\n`);
      if (info.bitmaps !== undefined) io.stdout(`bitmaps size: ${info.bitmaps}\n`);
    } else {
      // QAPI BlockMeasureInfo schema order: required, fully-allocated, bitmaps.
      io.stdout(formatQemuJson({ required: info.required, 'fully-allocated': info.fullyAllocated, bitmaps: info.bitmaps }) + '\n');
    }
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
