import { UnsupportedError } from '../../core/errors.js';
import { isHelpRequest, parseOptionString, formatOptionHelp } from '../../core/options.js';
import { defaultRegistry } from '../../block/registry.js';
import { createProtocolOf } from '../../block/create-protocol.js';
import { prepareCreate } from '../../jobs/create.js';
import { optionLists, parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { cvtnum, reportError, warningPrinter, type CliIo } from '../context.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'options', short: 'o', long: ['options'], arg: true, multi: true },
  { key: 'backing', short: 'b', long: ['backing'], arg: true },
  { key: 'backingFormat', short: 'F', long: ['backing-format'], arg: true },
  { key: 'backingFormat', short: 'B', arg: true },
  { key: 'unsafe', short: 'u', long: ['backing-unsafe'] },
  { key: 'quiet', short: 'q', long: ['quiet'] },
  OBJECT_OPTION,
  ...TRUST_OPTIONS,
];

/** `-o help`: the driver's options (all levels when a file name is given). */
export async function printOptionHelp(io: CliIo, format: string, filename: string | undefined): Promise<number> {
  const driver = defaultRegistry.get(format);
  if (!driver.create) throw new UnsupportedError(`Format driver '${format}' does not support image creation`);
  if (filename === undefined) {
    // `file` is the protocol itself: its own options are the protocol's.
    io.stdout(formatOptionHelp(`Supported ${format} options:`, defaultRegistry.createOptions(driver, format === 'file')));
    io.stdout('\nThe protocol level may support further options.\nSpecify the target filename to include those options.\n');
  } else {
    io.stdout(formatOptionHelp('Supported options:', defaultRegistry.createOptions(driver, true, await createProtocolOf(filename))));
  }
  return 0;
}

/** `vdisk create [-q] [-f fmt] [-b backing [-F fmt]] [-u] [-o options] filename [size]` */
export async function createCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const format = last(args, 'format') ?? 'raw';
    const optionStrings = optionLists(args);
    if (optionStrings.some((o) => isHelpRequest(parseOptionString(o)))) return await printOptionHelp(io, format, args.operands[0]);
    const [filename, sizeArg, extra] = args.operands;
    if (filename === undefined) throw new UsageError('Expecting image file name');
    let size: number | undefined;
    if (sizeArg !== undefined) {
      size = cvtnum(io, 'image size', sizeArg);
      if (size === undefined) return 1;
    }
    if (extra !== undefined) throw new UsageError(`Unexpected argument: ${extra}`);
    const plan = await prepareCreate(filename, {
      format,
      size,
      options: optionStrings,
      backingFile: last(args, 'backing'),
      backingFormat: last(args, 'backingFormat'),
      backingUnsafe: args.flags.has('unsafe'),
      onWarning: warningPrinter(io),
      ...trustFrom(args), ...secretsFrom(args),
    });
    if (!args.flags.has('quiet')) io.stdout(plan.formatting + '\n');
    await plan.execute();
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
