import type { IngestPolicy } from '../block/ingest-policy.js';
import { InvalidArgumentError } from '../core/errors.js';
import { parseSize } from '../core/sizes.js';
import { last, type OptSpec, type ParsedArgs } from './args.js';
import { trustFrom } from './trust-options.js';

/** vdisk-only options of the commands an import service runs on uploads (inspect, info, check, convert). */
export const INGEST_OPTIONS: readonly OptSpec[] = [
  { key: 'allowedFormats', long: ['allowed-formats'], arg: true },
  { key: 'maxVirtualSize', long: ['max-virtual-size'], arg: true },
  { key: 'maxInflatedSize', long: ['max-inflated-size'], arg: true },
  { key: 'noUnwrap', long: ['no-unwrap'] },
  { key: 'maxPbkdf2Iterations', long: ['max-pbkdf2-iterations'], arg: true },
];

/** `--allowed-formats=qcow2,raw` as a list (an empty list allows nothing). */
function formatList(text: string): string[] {
  const list = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
  if (list.length === 0) throw new InvalidArgumentError(`Invalid format list '${text}' for --allowed-formats (expecting e.g. qcow2,raw)`);
  return list;
}

/**
 * The ingest policy the options ask for (undefined when none is given: a
 * policy makes the trust mode `none` unless --trust says otherwise, so it
 * is only made when asked for; an explicit --trust or --untrusted is
 * kept) and whether wrapped uploads are inflated.
 */
export function ingestFrom(args: ParsedArgs): { policy?: IngestPolicy; unwrap?: boolean; maxPbkdf2Iterations?: number } {
  const formats = last(args, 'allowedFormats');
  const virtual = last(args, 'maxVirtualSize');
  const inflated = last(args, 'maxInflatedSize');
  const unwrap = args.flags.has('noUnwrap') ? { unwrap: false } : {};
  const pbkdf2 = last(args, 'maxPbkdf2Iterations');
  const iterations = pbkdf2 === undefined ? {} : { maxPbkdf2Iterations: iterationCount(pbkdf2) };
  if (formats === undefined && virtual === undefined && inflated === undefined) return { ...unwrap, ...iterations };
  const policy: IngestPolicy = {
    allowedFormats: formats === undefined ? undefined : formatList(formats),
    maxVirtualSize: virtual === undefined ? undefined : parseSize(virtual, 'virtual size limit'),
    maxInflatedSize: inflated === undefined ? undefined : parseSize(inflated, 'inflated size limit'),
    // An explicit --trust/--untrusted is the policy's trust; otherwise the policy's default, none.
    trust: args.flags.has('untrusted') || last(args, 'trust') !== undefined ? trustFrom(args).trust : undefined,
  };
  return { ...unwrap, ...iterations, policy };
}

/** `--max-pbkdf2-iterations=N`: a whole number of iterations. */
function iterationCount(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`Invalid iteration count '${text}' for --max-pbkdf2-iterations (expecting a whole number)`);
  return n;
}
