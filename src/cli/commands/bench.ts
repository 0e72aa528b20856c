import { InvalidArgumentError } from '../../core/errors.js';
import { parseSize, withoutSizeWarnings } from '../../core/sizes.js';
import { cacheModeNamed } from '../../core/cache-mode.js';
import { bench } from '../../jobs/bench.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { qemuStrtoul } from '../c-number.js';
import { reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';

/** qemu_strtoul(text, NULL, 0) at most `max` (negative values wrap, so they fail the bound; `-0` is 0). */
function strtoul(text: string, max: number, message: string): number {
  const v = qemuStrtoul(text);
  if (v === undefined || v > BigInt(max)) throw new InvalidArgumentError(message);
  return Number(v);
}

const INT_MAX = 2147483647;

/** cvtnum_full(what, text, 0, INT_MAX). */
function ranged(what: string, text: string): number {
  const v = parseSize(text, what);
  if (v > INT_MAX) throw new InvalidArgumentError(`Invalid ${what} specified. Must be between 0 and ${INT_MAX}.`);
  return v;
}

/** Each option's value as img_bench reads it inside its getopt loop: a bad one fails where it stands, a later good one or not. */
const VALUES = {
  count: (v: string) => strtoul(v, INT_MAX, 'Invalid request count specified'),
  depth: (v: string) => strtoul(v, INT_MAX, 'Invalid queue depth specified'),
  aio: (v: string) => {
    if (!['threads', 'native', 'io_uring'].includes(v)) throw new InvalidArgumentError(`Invalid aio option: ${v}`);
    return v as 'threads' | 'native' | 'io_uring';
  },
  offset: (v: string) => parseSize(v, 'offset'),
  size: (v: string) => ranged('buffer size', v),
  step: (v: string) => ranged('step_size', v),
  cache: (v: string) => {
    const mode = cacheModeNamed(v);
    if (mode === undefined) throw new InvalidArgumentError('Invalid cache mode');
    return mode;
  },
  pattern: (v: string) => strtoul(v, 0xff, 'Invalid pattern byte specified'),
  flushInterval: (v: string) => strtoul(v, INT_MAX, 'Invalid flush interval specified'),
};

const checked = (key: keyof typeof VALUES) => (v: string): void => void VALUES[key](v);

const SPECS: readonly OptSpec[] = [
  { key: 'count', short: 'c', arg: true, check: checked('count') },
  { key: 'depth', short: 'd', arg: true, check: checked('depth') },
  { key: 'format', short: 'f', arg: true },
  { key: 'native', short: 'n' },
  { key: 'aio', short: 'i', arg: true, check: checked('aio') },
  { key: 'offset', short: 'o', arg: true, check: checked('offset') },
  { key: 'quiet', short: 'q' },
  { key: 'size', short: 's', arg: true, check: checked('size') },
  { key: 'step', short: 'S', arg: true, check: checked('step') },
  { key: 'cache', short: 't', arg: true, check: checked('cache') },
  { key: 'write', short: 'w' },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  { key: 'flushInterval', long: ['flush-interval'], arg: true, check: checked('flushInterval') },
  { key: 'imageOpts', long: ['image-opts'] },
  { key: 'pattern', long: ['pattern'], arg: true, check: checked('pattern') },
  { key: 'noDrain', long: ['no-drain'] },
  ...TRUST_OPTIONS,
];

/** The last value given for `key`, read (already checked by the parse). */
function valueOf<K extends keyof typeof VALUES>(args: ReturnType<typeof parseArgs>, key: K): ReturnType<(typeof VALUES)[K]> | undefined {
  const v = last(args, key);
  return v === undefined ? undefined : (withoutSizeWarnings(() => VALUES[key](v)) as ReturnType<(typeof VALUES)[K]>);
}

/** `vdisk bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename` */
export async function benchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const count = valueOf(args, 'count');
    const depth = valueOf(args, 'depth');
    const aio = valueOf(args, 'aio');
    const offset = valueOf(args, 'offset');
    const bufferSize = valueOf(args, 'size');
    const step = valueOf(args, 'step');
    const cache = valueOf(args, 'cache');
    const pattern = valueOf(args, 'pattern');
    const flushInterval = valueOf(args, 'flushInterval');
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
      aio: args.flags.has('native') ? 'native' : aio,
      cache,
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
