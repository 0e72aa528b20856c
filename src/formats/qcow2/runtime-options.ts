/**
 * qcow2's open options (qemu's qcow2_runtime_opts), checked as
 * qcow2_update_options_prepare and read_cache_sizes check them, with their
 * messages. vdisk sizes its metadata caches itself, so the cache options
 * are validated but only tune nothing; `pass-discard-snapshot` decides
 * whether snapshot operations punch holes where they free clusters
 * (discard.ts); the rest (request and other discards, overlap checks,
 * lazy refcounts at run time) have no effect on what qemu-img's commands
 * write either, except `lazy-refcounts`, which vdisk does not switch on at
 * run time (README: deliberate differences).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { typeQemuOpts, type OptionSpec, type QemuOptValue } from '../../core/options.js';
import { withoutSizeWarnings } from '../../core/sizes.js';

const OVERLAP_BITS = ['main-header', 'active-l1', 'active-l2', 'refcount-table', 'refcount-block', 'snapshot-table', 'inactive-l1', 'inactive-l2', 'bitmap-directory'];

/** The keys qcow2 takes when opened (a name ending in `.` covers a prefix). */
export const QCOW2_RUNTIME_OPTIONS: readonly OptionSpec[] = [
  { name: 'lazy-refcounts', type: 'bool', help: 'Postpone refcount updates' },
  { name: 'pass-discard-request', type: 'bool', help: 'Pass guest discard requests to the layer below' },
  { name: 'pass-discard-snapshot', type: 'bool', help: 'Generate discard requests when snapshot related space is freed' },
  { name: 'pass-discard-other', type: 'bool', help: 'Generate discard requests when other clusters are freed' },
  { name: 'overlap-check', type: 'string', help: 'Selects which overlap checks to perform from a range of templates (none, constant, cached, all)' },
  { name: 'overlap-check.template', type: 'string', help: 'Selects which overlap checks to perform from a range of templates (none, constant, cached, all)' },
  ...OVERLAP_BITS.map((b): OptionSpec => ({ name: `overlap-check.${b}`, type: 'bool', help: `Check for unintended writes into ${b}` })),
  { name: 'cache-size', type: 'size', help: 'Maximum combined metadata (L2 tables and refcount blocks) cache size' },
  { name: 'l2-cache-size', type: 'size', help: 'Maximum L2 table cache size' },
  { name: 'l2-cache-entry-size', type: 'size', help: 'Size of each entry in the L2 cache' },
  { name: 'refcount-cache-size', type: 'size', help: 'Maximum refcount block cache size' },
  { name: 'cache-clean-interval', type: 'number', help: 'Clean unused cache entries after this time (in seconds)' },
  { name: 'encrypt.', type: 'string', help: 'Encryption options' },
  { name: 'data-file', type: 'string', help: 'Node of the external data file' },
  { name: 'data-file.', type: 'string', help: 'Options of the external data file' },
];

/** What the checks need to know about the open image. */
export interface Qcow2OptionFacts {
  readonly version: number;
  readonly clusterSize: number;
  readonly l2EntrySize: number;
  readonly virtualSize: number;
  /** 0 none, 1 AES, 2 LUKS. */
  readonly cryptMethod: number;
}

const MIB = 1024n * 1024n;
const INT_MAX = 2n ** 31n - 1n;
const UINT_MAX = 2n ** 32n - 1n;
const MIN_REFCOUNT_CACHE = 4n;
const MIN_L2_CACHE = 2n;

const size = (opts: Map<string, QemuOptValue>, key: string): bigint | undefined => opts.get(key) as bigint | undefined;
const roundUp = (n: bigint, to: bigint): bigint => ((n + to - 1n) / to) * to;

/** read_cache_sizes: L2 and refcount cache sizes in bytes and the L2 entry size, or qemu's error. */
function cacheSizes(opts: Map<string, QemuOptValue>, f: Qcow2OptionFacts): { l2: bigint; refcount: bigint; entry: bigint } {
  const cluster = BigInt(f.clusterSize);
  const maxL2 = roundUp(((BigInt(f.virtualSize) + cluster - 1n) / cluster) * BigInt(f.l2EntrySize), cluster);
  const combined = size(opts, 'cache-size');
  const l2Setting = size(opts, 'l2-cache-size');
  let refcount = size(opts, 'refcount-cache-size') ?? 0n;
  const entrySetting = size(opts, 'l2-cache-entry-size');
  let entry = entrySetting ?? cluster;
  let l2 = maxL2 < (l2Setting ?? 32n * MIB) ? maxL2 : (l2Setting ?? 32n * MIB);
  if (combined !== undefined) {
    if (l2Setting !== undefined && opts.has('refcount-cache-size')) {
      throw new InvalidArgumentError('cache-size, l2-cache-size and refcount-cache-size may not be set at the same time');
    }
    if (l2Setting !== undefined && l2Setting > combined) throw new InvalidArgumentError('l2-cache-size may not exceed cache-size');
    if (refcount > combined) throw new InvalidArgumentError('refcount-cache-size may not exceed cache-size');
    const minRefcount = MIN_REFCOUNT_CACHE * cluster;
    if (l2Setting !== undefined) refcount = combined - l2;
    else if (opts.has('refcount-cache-size')) l2 = combined - refcount;
    else if (combined >= maxL2 + minRefcount) [l2, refcount] = [maxL2, combined - maxL2];
    else [refcount, l2] = [combined < minRefcount ? combined : minRefcount, combined - (combined < minRefcount ? combined : minRefcount)];
  }
  if (l2 < maxL2 && entrySetting === undefined) entry = cluster < 4096n ? cluster : 4096n;
  if (entry < 512n || entry > cluster || (entry & (entry - 1n)) !== 0n) {
    throw new InvalidArgumentError(`L2 cache entry size must be a power of two between 512 and the cluster size (${f.clusterSize})`);
  }
  return { l2, refcount, entry };
}

function checkOverlap(opts: Map<string, QemuOptValue>): void {
  const mode = opts.get('overlap-check') as string | undefined;
  const template = opts.get('overlap-check.template') as string | undefined;
  if (mode !== undefined && template !== undefined && mode !== template) {
    throw new InvalidArgumentError(`Conflicting values for qcow2 options 'overlap-check' ('${mode}') and 'overlap-check.template' ('${template}')`);
  }
  const chosen = mode ?? template ?? 'cached';
  if (!['none', 'constant', 'cached', 'all'].includes(chosen)) {
    throw new InvalidArgumentError(`Unsupported value '${chosen}' for qcow2 option 'overlap-check'. Allowed are any of the following: none, constant, cached, all`);
  }
}

function checkEncryption(pairs: readonly (readonly [string, string])[], f: Qcow2OptionFacts): void {
  const format = pairs.find(([k]) => k === 'encrypt.format')?.[1];
  if (format === undefined) return;
  const header = f.cryptMethod === 1 ? 'aes' : f.cryptMethod === 2 ? 'luks' : undefined;
  if (header === undefined) throw new InvalidArgumentError(`No encryption in image header, but options specified format '${format}'`);
  if (header !== format) throw new InvalidArgumentError(`Header reported '${header}' encryption format but options specify '${format}'`);
}

/**
 * Checks the open options of an image as qemu does when opening it.
 *
 * @throws {InvalidArgumentError} with qemu's message for a bad value or combination
 */
export function checkQcow2RuntimeOptions(pairs: readonly (readonly [string, string])[], f: Qcow2OptionFacts): void {
  if (pairs.length === 0) return;
  const opts = typeQemuOpts(QCOW2_RUNTIME_OPTIONS, pairs);
  const { l2, refcount, entry } = cacheSizes(opts, f);
  if (l2 / entry > INT_MAX && l2 / entry >= MIN_L2_CACHE) throw new InvalidArgumentError('L2 cache size too big');
  if (refcount / BigInt(f.clusterSize) > INT_MAX) throw new InvalidArgumentError('Refcount cache size too big');
  if ((size(opts, 'cache-clean-interval') ?? 600n) > UINT_MAX) throw new InvalidArgumentError('Cache clean interval too big');
  if (opts.get('lazy-refcounts') === true && f.version < 3) {
    throw new InvalidArgumentError('Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility level');
  }
  checkOverlap(opts);
  checkEncryption(pairs, f);
}

/** qemu's `pass-discard-snapshot`: on unless the open options turn it off (checked by {@link checkQcow2RuntimeOptions} first). */
export function passDiscardSnapshot(pairs: readonly (readonly [string, string])[]): boolean {
  return pairs.length === 0 || withoutSizeWarnings(() => typeQemuOpts(QCOW2_RUNTIME_OPTIONS, pairs)).get('pass-discard-snapshot') !== false;
}
