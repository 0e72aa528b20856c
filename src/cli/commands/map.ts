import { UnsupportedError, VdiskError } from '../../core/errors.js';
import { parseSize, parseSizeBig, withoutSizeWarnings } from '../../core/sizes.js';
import { mapBatches, type MapEntry } from '../../jobs/map.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { outputFormat, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'output', long: ['output'], arg: true },
  // Each occurrence checked as it comes, as qemu-img's getopt loop does (a bad one fails even if a later one is good).
  { key: 'start', short: 's', long: ['start-offset'], arg: true, check: (v) => void parseSize(v, 'start offset') },
  { key: 'max', short: 'l', long: ['max-length'], arg: true, check: (v) => void parseMaxLength(v, 0) },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
];

/** `%#-16x` as C prints it: 0 stays `0`, others get `0x`. */
function hex16(n: number): string {
  return (n === 0 ? '0' : `0x${n.toString(16)}`).padEnd(16);
}

/**
 * qemu's hand-printed entry: `{ "start": 0, "length": 512, ...}` (one space
 * inside the opening brace only), the keys of `mapEntryJson` in its order.
 */
function jsonLine(e: MapEntry): string {
  const offset = e.offset === undefined ? '' : `, "offset": ${e.offset}`;
  return `{ "start": ${e.start}, "length": ${e.length}, "depth": ${e.depth}, "present": ${e.present}, "zero": ${e.zero}, "data": ${e.data}${offset}}`;
}

/** Output gathered into large writes: map prints one line per extent, thousands of them. */
const FLUSH_AT = 64 * 1024;
const HUMAN_HEADER = `${'Offset'.padEnd(16)}${'Length'.padEnd(16)}${'Mapped to'.padEnd(16)}File\n`;

/** Runs `gen` up to its first entry, then hands back all of its entries. */
async function opened<T>(gen: AsyncGenerator<T>, onStatusError: () => void): Promise<AsyncIterable<T>> {
  let first: IteratorResult<T>;
  try {
    first = await gen.next();
  } catch (err) {
    if (err instanceof VdiskError && err.stage === 'block-status') onStatusError();
    throw err;
  }
  return {
    async *[Symbol.asyncIterator]() {
      if (first.done) return;
      yield first.value;
      yield* gen;
    },
  };
}

/** `vdisk map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] [-U] filename` */
const INT64_LIMIT = 2n ** 63n;

/**
 * `--max-length`: qemu-img takes any length up to 2^63 - 1, and a length only
 * bounds the walk (an image ends before 2^53), so a longer one is taken as
 * the longest vdisk can hold rather than refused as sizes are. Where start
 * plus length passes 2^63 - 1, qemu's end offset wraps negative and it maps
 * nothing: so does vdisk (a length of 0).
 */
function parseMaxLength(text: string, start: number): number {
  const r = parseSizeBig(text);
  if (!r.ok || r.value >= INT64_LIMIT) return parseSize(text, 'max length');
  if (BigInt(start) + r.value >= INT64_LIMIT) return 0;
  return Number(r.value > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : r.value);
}

export async function mapCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let pending = '';
  const flush = (): void => {
    if (pending) io.stdout(pending);
    pending = '';
  };
  // a reader slower than the walk (a pipe) must slow the walk down, not pile up output
  const flushed = async (): Promise<void> => {
    if (pending.length < FLUSH_AT) return;
    flush();
    await io.drain?.();
  };
  let output: ReturnType<typeof outputFormat> | undefined;
  let printedEntry = false;
  try {
    const args = parseArgs(argv, SPECS);
    // The operand count first, then --output, as img_map checks them after its getopt loop.
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    output = outputFormat(last(args, 'output'));
    const s = last(args, 'start');
    const startOffset = s === undefined ? undefined : withoutSizeWarnings(() => parseSize(s, 'start offset'));
    const l = last(args, 'max');
    const maxLength = l === undefined ? undefined : withoutSizeWarnings(() => parseMaxLength(l, startOffset ?? 0));
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    // The image opens on the first entry: take it before printing anything, so an open error prints alone.
    const batches = await opened(mapBatches(filename, { format, startOffset, maxLength, forceShare: args.flags.has('forceShare'), onWarning: warningPrinter(io), ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args) }), () => {
      // a block status failure comes after qemu printed its header (or the JSON list's opening bracket)
      pending += output === 'human' ? HUMAN_HEADER : '[';
    });
    if (output === 'human') {
      pending += HUMAN_HEADER;
      for await (const batch of batches) {
        for (const e of batch) {
          if (e.data && e.offset === undefined) throw new UnsupportedError('File contains external, encrypted or compressed clusters.');
          if (e.data && !e.zero) pending += `${hex16(e.start)}${hex16(e.length)}${hex16(e.offset ?? 0)}${e.filename ?? ''}\n`;
        }
        await flushed();
      }
      flush();
      return 0;
    }
    // qemu prints one entry per line as it goes: "[{...},\n{...}]\n"
    for await (const batch of batches) {
      for (const e of batch) {
        pending += `${printedEntry ? ',\n' : '['}${jsonLine(e)}`;
        printedEntry = true;
      }
      await flushed();
    }
    // An empty range (start at or past the end, --max-length=0): qemu prints its initial, empty entry.
    if (!printedEntry) pending += `[${jsonLine({ start: startOffset ?? 0, length: 0, depth: 0, present: false, zero: false, data: false })}`;
    pending += ']\n';
    flush();
    return 0;
  } catch (err) {
    // qemu ends each JSON entry with ",\n" once it knows another follows; a failing status means one did
    if (output === 'json' && printedEntry && err instanceof VdiskError && err.stage === 'block-status') pending += ',\n';
    flush(); // what qemu printed before the error
    return reportError(io, err);
  }
}
