import { InvalidArgumentError } from '../../core/errors.js';
import { isHelpRequest, parseOptionString } from '../../core/options.js';
import { parseSize, withoutSizeWarnings } from '../../core/sizes.js';
import { convert } from '../../jobs/convert.js';
import { digestAlgorithm } from '../../jobs/content-digest.js';
import { optionLists, parseArgs, last, type OptSpec } from '../args.js';
import type { CacheMode } from '../../core/cache-mode.js';
import { cacheOption } from '../cache-option.js';
import { PROG, reportError, warningPrinter, type CliIo } from '../context.js';
import { qemuStrtoi } from '../c-number.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode } from '../progress-bar.js';
import { INGEST_OPTIONS, ingestFrom } from '../ingest-options.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { printOptionHelp } from './create.js';
import { parseImageOpts } from '../image-opts.js';
import type { ImageTarget } from '../../block/chain.js';
import { parseSnapshotParam } from '../snapshot-param.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';
import { convertStdin, readsStdin } from './convert-stdin.js';

/** `-S`: a size, a multiple of 512 up to 16 MiB. */
function sparseBuffer(text: string): number {
  const v = parseSize(text, 'buffer size for sparse output');
  if (v % 512 !== 0 || v > 16 * 1024 * 1024) {
    throw new InvalidArgumentError('Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output).');
  }
  return v;
}

/** `-m`: qemu_strtol(text, NULL, 0) from 1 to 16. */
function coroutines(text: string): number {
  const v = qemuStrtoi(text);
  if (v === undefined || v < 1 || v > 16) throw new InvalidArgumentError('Invalid number of coroutines. Allowed number of coroutines is between 1 and 16');
  return v;
}

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['source-format'], arg: true },
  { key: 'targetFormat', short: 'O', long: ['target-format'], arg: true },
  { key: 'options', short: 'o', long: ['target-format-options'], arg: true, multi: true },
  { key: 'backing', short: 'B', long: ['backing'], arg: true },
  { key: 'backing', short: 'b', arg: true },
  { key: 'backingFormat', short: 'F', long: ['backing-format'], arg: true },
  { key: 'compress', short: 'c', long: ['compress'] },
  { key: 'copyRange', short: 'C', long: ['copy-range-offloading'] },
  PROGRESS_OPTION,
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'noCreate', short: 'n', long: ['no-create'] },
  // -S, -l, -m and -r are checked as they come, as img_convert's getopt loop does.
  { key: 'sparse', short: 'S', long: ['sparse-size'], arg: true, check: (v) => void sparseBuffer(v) },
  { key: 'cache', short: 't', long: ['target-cache'], arg: true },
  { key: 'srcCache', short: 'T', long: ['source-cache'], arg: true },
  { key: 'snapshot', short: 'l', long: ['snapshot'], arg: true, check: (v) => void parseSnapshotParam(v) },
  // qemu-img 7.2 no longer has the old `-s NAME` ("unrecognized option '-s'").
  { key: 'parallel', short: 'm', long: ['parallel'], arg: true, check: (v) => void coroutines(v) },
  { key: 'oob', short: 'W', long: ['oob-writes'] },
  { key: 'rate', short: 'r', long: ['rate-limit'], arg: true, check: (v) => void parseSize(v, 'rate limit') },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  { key: 'targetIsZero', long: ['target-is-zero'] },
  { key: 'preset', long: ['preset'], arg: true },
  { key: 'salvage', long: ['salvage'] },
  { key: 'bitmaps', long: ['bitmaps'] },
  { key: 'skipBrokenBitmaps', long: ['skip-broken-bitmaps'] },
  // vdisk's own: the digest of the guest content, computed while copying.
  { key: 'digest', long: ['digest'], arg: true },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  { key: 'targetImageOpts', long: ['target-image-opts'] },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
  ...INGEST_OPTIONS,
];

/** img_convert's checks after its getopt loop, in its order (before `-o help`, the operand count and -T). */
function checkCombinations(flags: Set<string>, sparseGiven: boolean, optionsGiven: boolean): void {
  if (flags.has('skipBrokenBitmaps') && !flags.has('bitmaps')) throw new InvalidArgumentError('Use of --skip-broken-bitmaps requires --bitmaps');
  if (flags.has('copyRange') && flags.has('compress')) throw new InvalidArgumentError('Cannot enable copy offloading when -c is used');
  if (flags.has('copyRange') && sparseGiven) throw new InvalidArgumentError('Cannot enable copy offloading when -S is used');
  if (flags.has('copyRange') && flags.has('salvage')) throw new InvalidArgumentError('Cannot use copy offloading in salvaging mode');
  if (flags.has('targetImageOpts') && !flags.has('noCreate')) throw new InvalidArgumentError('--target-image-opts requires use of -n flag');
  if (flags.has('noCreate') && optionsGiven) throw new InvalidArgumentError('-o has no effect when skipping image creation');
  if (flags.has('targetIsZero') && !flags.has('noCreate')) throw new InvalidArgumentError('--target-is-zero requires use of -n flag');
}

/** `vdisk convert [options] filename [filename2 [...]] output_filename` */
export async function convertCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const targetFormat = last(args, 'targetFormat') ?? 'raw';
    const optionStrings = optionLists(args);
    const sparseArg = last(args, 'sparse');
    checkCombinations(args.flags, sparseArg !== undefined, optionStrings.length > 0);
    if (optionStrings.some((o) => isHelpRequest(parseOptionString(o)))) return await printOptionHelp(io, targetFormat, args.operands.at(-1));
    const sparseSize = sparseArg === undefined ? 4096 : withoutSizeWarnings(() => sparseBuffer(sparseArg));
    const m = last(args, 'parallel');
    const parallel = m === undefined ? undefined : coroutines(m);
    const rate = last(args, 'rate');
    const rateLimit = rate === undefined ? undefined : withoutSizeWarnings(() => parseSize(rate, 'rate limit'));
    if (args.operands.length < 2) throw new InvalidArgumentError('Must specify image file name');
    const sourceCache = cacheOption(last(args, 'srcCache'), 'source');
    if (readsStdin(args.operands.slice(0, -1))) {
      return await convertStdin(args, io, args.operands.at(-1) as string, { targetFormat, options: optionStrings.length > 0 ? optionStrings : undefined, targetCache: cacheOption(last(args, 'cache')), parallel });
    }
    let sourceFormat = last(args, 'format');
    let sources: ImageTarget[] = args.operands.slice(0, -1);
    let target: ImageTarget = args.operands.at(-1) as string;
    if (args.flags.has('imageOpts')) {
      if (sourceFormat !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive');
      sources = args.operands.slice(0, -1).map((s) => parseImageOpts(s, io, args.flags.has('forceShare')));
      sourceFormat = undefined;
    }
    if (args.flags.has('targetImageOpts')) {
      if (last(args, 'targetFormat') !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive');
      target = parseImageOpts(target as string, io);
    }
    // convert -l: the source read at an internal snapshot.
    const snapshotArg = last(args, 'snapshot');
    const snapshot = snapshotArg === undefined ? undefined : parseSnapshotParam(snapshotArg);
    const digestArg = last(args, 'digest');
    const preset = last(args, 'preset');
    // Writing to stdout needs the stream machinery (node:stream, node:tty, the archive presets): loaded only then.
    // A stream has no target file to create first: -t is checked before anything is read.
    if (target === '-') cacheOption(last(args, 'cache'));
    if (target === '-' && preset !== undefined) {
      const { checkStreamable, presetToStdout } = await import('./convert-stdout.js');
      checkStreamable((k) => args.flags.has(k) || last(args, k) !== undefined, sources.length);
      await presetToStdout(sources[0]!, preset, { sourceFormat, forceShare: args.flags.has('forceShare'), onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args), ...ingestFrom(args) });
      return 0;
    }
    if (target === '-') {
      if (digestArg !== undefined) throw new InvalidArgumentError('--digest cannot be used when writing the image to stdout');
      const { checkStreamable, convertToStdout } = await import('./convert-stdout.js');
      checkStreamable((k) => args.flags.has(k) || last(args, k) !== undefined, sources.length);
      const toStdout = {
        sourceFormat, targetFormat, options: optionStrings.length > 0 ? optionStrings : undefined, compress: args.flags.has('compress'),
        sparseSize, snapshot, forceShare: args.flags.has('forceShare'), cache: sourceCache, onWarning: warningPrinter(io),
        ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args), ...ingestFrom(args),
      };
      await convertToStdout(sources[0]!, toStdout, io, progressMode(args, args.flags.has('quiet')));
      return 0;
    }
    const job = convert(sources, target, {
      sourceFormat,
      // A preset sets the format: only an explicit -O is passed on (and must agree).
      targetFormat: preset === undefined ? targetFormat : last(args, 'targetFormat'),
      preset,
      options: optionStrings.length > 0 ? optionStrings : undefined,
      backingFile: last(args, 'backing'),
      backingFormat: last(args, 'backingFormat'),
      compress: args.flags.has('compress'),
      sparseSize,
      noCreate: args.flags.has('noCreate'),
      targetIsZero: args.flags.has('targetIsZero'),
      forceShare: args.flags.has('forceShare'),
      parallel,
      outOfOrder: args.flags.has('oob'),
      rateLimit,
      salvage: args.flags.has('salvage'),
      copyOffload: args.flags.has('copyRange'),
      snapshot,
      bitmaps: args.flags.has('bitmaps'),
      skipBrokenBitmaps: args.flags.has('skipBrokenBitmaps'),
      // Checked by the job where img_convert checks it: once the target is created.
      targetCache: last(args, 'cache') as CacheMode | undefined,
      sourceCache,
      digest: digestArg === undefined ? undefined : digestAlgorithm(digestArg),
      onWarning: warningPrinter(io),
      ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args), ...ingestFrom(args),
    });
    if (!args.flags.has('quiet')) job.on('warning', (w) => io.stderr(`${PROG}: warning: ${w.message}\n`));
    const result = await awaitWithProgress(job, io, progressMode(args, args.flags.has('quiet')));
    if (result.digest !== undefined) io.stdout(`${result.digest}\n`);
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
