import { parseSize, withoutSizeWarnings } from '../../core/sizes.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { bitmap, type BitmapAction } from '../../jobs/bitmap.js';
import { parseArgs, last, longOption, type OptSpec } from '../args.js';
import { reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const ACTIONS = ['add', 'remove', 'clear', 'enable', 'disable'] as const;

const SPECS: readonly OptSpec[] = [
  { key: 'sourceFile', short: 'b', long: ['source-file'], arg: true },
  { key: 'format', short: 'f', arg: true },
  { key: 'sourceFormat', short: 'F', long: ['source-format'], arg: true },
  // Checked as it comes, as img_bitmap's getopt loop does.
  { key: 'granularity', short: 'g', long: ['granularity'], arg: true, check: (v) => void parseSize(v, 'granularity') },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...ACTIONS.map((a): OptSpec => ({ key: a, long: [a] })),
  { key: 'merge', long: ['merge'], arg: true, multi: true },
  ...TRUST_OPTIONS,
];

/** The actions in command-line order (parseArgs keeps each option's values, not their interleaving). */
function orderedActions(argv: readonly string[]): BitmapAction[] {
  const out: BitmapAction[] = [];
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i] as string;
    if (w === '--') break;
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const spec = longOption(SPECS, w.slice(2, eq >= 0 ? eq : undefined));
      const value = spec?.arg && eq < 0 ? argv[++i] : w.slice(eq + 1);
      if (spec?.key === 'merge') out.push({ op: 'merge', source: value ?? '' });
      else if (spec && (ACTIONS as readonly string[]).includes(spec.key)) out.push({ op: spec.key as (typeof ACTIONS)[number] });
    } else if (w.startsWith('-') && w.length > 1) {
      for (let j = 1; j < w.length; j++) {
        const spec = SPECS.find((s) => s.short === w[j]);
        if (spec?.arg) {
          if (j === w.length - 1) i++;
          break;
        }
      }
    }
  }
  return out;
}

/** `vdisk bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] [--image-opts | -f fmt] filename bitmap` */
export async function bitmapCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    let granularity: number | undefined;
    const g = last(args, 'granularity');
    if (g !== undefined) {
      const v = withoutSizeWarnings(() => parseSize(g, 'granularity'));
      // qemu-img passes the 64-bit value as uint32; 0 means "default".
      granularity = v === 0 ? undefined : v % 2 ** 32;
    }
    const actions = orderedActions(argv);
    const opts = { granularity, sourceFile: last(args, 'sourceFile'), sourceFormat: last(args, 'sourceFormat') };
    if (actions.length === 0) throw new InvalidArgumentError('Need at least one of --add, --remove, --clear, --enable, --disable, or --merge');
    if (g !== undefined && !actions.some((a) => a.op === 'add')) throw new InvalidArgumentError('granularity only supported with --add');
    if (opts.sourceFormat !== undefined && opts.sourceFile === undefined) throw new InvalidArgumentError('-F only supported with -b');
    if (opts.sourceFile !== undefined && !actions.some((a) => a.op === 'merge')) throw new InvalidArgumentError('Merge bitmap source file only supported with --merge');
    if (args.operands.length !== 2) throw new InvalidArgumentError('Expecting filename and bitmap name');
    const [operand, name] = args.operands as [string, string];
    const { filename, format } = imageArg(operand, last(args, 'format'), args.flags.has('imageOpts'), io);
    await bitmap(filename, name, actions, { ...opts, format, onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args) });
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
