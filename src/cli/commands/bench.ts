import { InvalidArgumentError } from '../../core/errors.js';
import { parseSize } from '../../core/sizes.js';
import { parseCacheMode } from '../../core/cache-mode.js';
import { bench } from '../../jobs/bench.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { PROG, cvtnum, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';

const SPECS: readonly OptSpec[] = [
  { key: 'count', short: 'c', arg: true },
  { key: 'depth', short: 'd', arg: true },
  { key: 'format', short: 'f', arg: true },
  { key: 'native', short: 'n' },
  { key: 'aio', short: 'i', arg: true },
  { key: 'offset', short: 'o', arg: true },
  { key: 'quiet', short: 'q' },
  { key: 'size', short: 's', arg: true },
  { key: 'step', short: 'S', arg: true },
  { key: 'cache', short: 't', arg: true },
  { key: 'write', short: 'w' },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  { key: 'flushInterval', long: ['flush-interval'], arg: true },
  { key: 'imageOpts', long: ['image-opts'] },
  { key: 'pattern', long: ['pattern'], arg: true },
  { key: 'noDrain', long: ['no-drain'] },
  ...TRUST_OPTIONS,
];

/** qemu_strtoul with base 0 (decimal, 0x hex, 0 octal); negative values wrap, so they fail the range checks. */
function strtoul(text: string, max: number, message: string): number {
  const t = text.trim();
  const m = /^\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(t);
  const v = m ? (m[1]!.length > 1 && m[1]![0] === '0' && !/^0[xX]/.test(m[1]!) ? parseInt(m[1]!, 8) : Number(m[1])) : NaN;
  if (!Number.isSafeInteger(v) || v > max) throw new InvalidArgumentError(message);
  return v;
}

const INT_MAX = 2147483647;

function ranged(io: CliIo, what: string, text: string): number | undefined {
  const v = cvtnum(io, what, text, (s) => parseSize(s, what));
  if (v === undefined) return undefined;
  if (v > INT_MAX) {
    io.stderr(`${PROG}: Invalid ${what} specified. Must be between 0 and ${INT_MAX}.\n`);
    return undefined;
  }
  return v;
}

/** `vdisk bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename` */
export async function benchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const c = last(args, 'count');
    const d = last(args, 'depth');
    const count = c === undefined ? undefined : strtoul(c, INT_MAX, 'Invalid request count specified');
    const depth = d === undefined ? undefined : strtoul(d, INT_MAX, 'Invalid queue depth specified');
    const aio = last(args, 'aio');
    if (aio !== undefined && !['threads', 'native', 'io_uring'].includes(aio)) throw new InvalidArgumentError(`Invalid aio option: ${aio}`);
    let offset: number | undefined;
    const o = last(args, 'offset');
    if (o !== undefined && (offset = cvtnum(io, 'offset', o, (s) => parseSize(s, 'offset'))) === undefined) return 1;
    let bufferSize: number | undefined;
    const s = last(args, 'size');
    if (s !== undefined && (bufferSize = ranged(io, 'buffer size', s)) === undefined) return 1;
    let step: number | undefined;
    const st = last(args, 'step');
    if (st !== undefined && (step = ranged(io, 'step_size', st)) === undefined) return 1;
    const cache = last(args, 'cache');
    if (cache !== undefined && !['none', 'off', 'writeback', 'writethrough', 'directsync', 'unsafe'].includes(cache)) throw new InvalidArgumentError('Invalid cache mode');
    const p = last(args, 'pattern');
    const pattern = p === undefined ? undefined : strtoul(p, 0xff, 'Invalid pattern byte specified');
    const f = last(args, 'flushInterval');
    const flushInterval = f === undefined ? undefined : strtoul(f, INT_MAX, 'Invalid flush interval specified');
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    const result = await bench(filename, {
      format,
      count,
      depth,
      offset,
      bufferSize,
      step,
      write: args.flags.has('write'),
      pattern,
      flushInterval,
      noDrain: args.flags.has('noDrain'),
      // -i threads does not undo -n (bdrv_parse_aio only adds flags).
      aio: args.flags.has('native') ? 'native' : (aio as 'threads' | 'native' | 'io_uring' | undefined),
      cache: cache === undefined ? undefined : parseCacheMode(cache),
      forceShare: args.flags.has('forceShare'),
      onWarning: warningPrinter(io),
      ...trustFrom(args),
      onStart: (r) => {
        io.stdout(`Sending ${r.count} ${r.write ? 'write' : 'read'} requests, ${r.bufferSize} bytes each, ${r.depth} in parallel (starting at offset ${r.offset}, step size ${r.step})\n`);
        if (flushInterval) io.stdout(`Sending flush every ${flushInterval} requests\n`);
      },
    });
    io.stdout(`Run completed in ${result.seconds.toFixed(3)} seconds.\n`);
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
