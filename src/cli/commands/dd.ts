import { InvalidArgumentError, VdiskError } from '../../core/errors.js';
import { parseSize } from '../../core/sizes.js';
import { dd } from '../../jobs/dd.js';
import { parseArgs, last, type OptSpec } from '../args.js';
import { PROG, cvtnum, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', arg: true },
  { key: 'targetFormat', short: 'O', arg: true },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

interface Operands {
  bs?: number;
  count?: number;
  skip?: number;
  input?: string;
  output?: string;
}

/**
 * `count=` or `skip=` as cvtnum parses it. qemu-img takes up to INT64_MAX blocks; any count or skip
 * of 2^53 blocks or more reaches past every image vdisk opens whatever the block size, so it means
 * what 2^53 - 1 means (all of the input; nothing left after the skip).
 */
function blockCount(io: CliIo, key: string, value: string): number | undefined {
  try {
    return parseSize(value, key);
  } catch (err) {
    if (err instanceof VdiskError && err.data?.['kind'] === 'size-limit') return Number.MAX_SAFE_INTEGER;
    reportError(io, err);
    return undefined;
  }
}

/** Parses `key=value` operands in order, with qemu-img's messages; undefined when one was bad (already reported). */
function parseOperands(io: CliIo, words: readonly string[]): Operands | undefined {
  const out: Operands = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    const value = w.slice(eq + 1);
    if (eq < 0 || !['bs', 'count', 'skip', 'if', 'of'].includes(key)) throw new InvalidArgumentError(`unrecognized operand ${key}`);
    if (key === 'if') out.input = value;
    else if (key === 'of') out.output = value;
    else {
      const n = key === 'bs' ? cvtnum(io, key, value) : blockCount(io, key, value);
      if (n === undefined) return undefined;
      if (key === 'bs' && (n < 1 || n > 2147483647)) throw new InvalidArgumentError('Invalid bs specified. Must be between 1 and 2147483647.');
      out[key as 'bs' | 'count' | 'skip'] = n;
    }
  }
  return out;
}

/** `vdisk dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output` */
export async function ddCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const ops = parseOperands(io, args.operands);
    if (!ops) return 1;
    if (ops.input === undefined || ops.output === undefined) throw new InvalidArgumentError('Must specify both input and output files');
    const { filename: input, format } = imageArg(ops.input, last(args, 'format'), args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    const job = dd(input, ops.output, {
      sourceFormat: format,
      targetFormat: last(args, 'targetFormat'),
      blockSize: ops.bs,
      count: ops.count,
      skip: ops.skip,
      forceShare: args.flags.has('forceShare'),
      onWarning: warningPrinter(io),
      ...trustFrom(args), ...secretsFrom(args),
    });
    // qemu-img reports a skip past the end as an error line but still creates the (empty) output and exits 0.
    job.on('warning', (w) => io.stderr(`${PROG}: ${w.message}\n`));
    await job;
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
