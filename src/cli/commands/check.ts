import { cFixed } from '../../core/c-format.js';
import { VdiskError } from '../../core/errors.js';
import { check, type CheckReport, type CheckRepair } from '../../jobs/check.js';
import { toQemuJson } from '../../jobs/qemu-output.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { checkCacheMode, outputFormat, PROG, reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { formatQemuJson } from '../qemu-json.js';
import { INGEST_OPTIONS, ingestFrom } from '../ingest-options.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'output', long: ['output'], arg: true },
  // Checked as it comes, as img_check's getopt loop does.
  { key: 'repair', short: 'r', long: ['repair'], arg: true, check: (v) => void repairMode(v) },
  { key: 'cache', short: 'T', long: ['cache'], arg: true },
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
  ...INGEST_OPTIONS,
];

function repairMode(value: string | undefined): CheckRepair {
  if (value === undefined) return 'none';
  if (value === 'leaks' || value === 'all') return value;
  throw new UsageError(`Unknown option value for -r (expecting 'leaks' or 'all'): ${value}`);
}

/** qemu-img's dump_human_image_check. */
export function formatCheckHuman(r: CheckReport): string {
  let out = '';
  if (r.corruptions === 0 && r.leaks === 0 && r.checkErrors === 0) out += 'No errors were found on the image.\n';
  else {
    if (r.corruptions) out += `\n${r.corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`;
    if (r.leaks) out += `\n${r.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`;
    if (r.checkErrors) out += `\n${r.checkErrors} internal errors have occurred during the check.\n`;
  }
  const total = r.totalClusters ?? 0;
  const alloc = r.allocatedClusters ?? 0;
  if (total !== 0 && alloc !== 0) {
    const pct = (n: number, d: number): string => cFixed((n * 100) / d, 2);
    out += `${alloc}/${total} = ${pct(alloc, total)}% allocated, ${pct(r.fragmentedClusters ?? 0, alloc)}% fragmented, ${pct(r.compressedClusters ?? 0, alloc)}% compressed clusters\n`;
  }
  if (r.imageEndOffset) out += `Image end offset: ${r.imageEndOffset}\n`;
  return out;
}

/**
 * Finding lines gathered into large stderr writes: a damaged map can have
 * millions, and one write each costs more than the check. Flushed before
 * anything else is printed, so the order stays qemu's.
 */
class LineBatch {
  readonly #io: CliIo;
  #pending = '';

  constructor(io: CliIo) {
    this.#io = io;
  }

  add(line: string): void {
    this.#pending += line;
    if (this.#pending.length >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.#pending) this.#io.stderr(this.#pending);
    this.#pending = '';
  }

  /** Flushes, then waits until stderr has room. */
  async taken(): Promise<void> {
    this.flush();
    await this.#io.drainStderr?.();
  }
}

/**
 * `vdisk check [-f fmt] [--output=human|json] [-r leaks|all] [-T cache] [-q] [-U] filename` —
 * exit 0 consistent, 1 check not completed, 2 corruptions, 3 leaks only, 63 no check for the format.
 */
export async function checkCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const findings = new LineBatch(io);
  try {
    const args = parseArgs(argv, SPECS);
    // The operand count, --output, then -T, as img_check checks them after its getopt loop.
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const output = outputFormat(last(args, 'output'));
    const repair = repairMode(last(args, 'repair'));
    const quiet = args.flags.has('quiet');
    checkCacheMode(last(args, 'cache'), 'source');
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    const onFinding = (line: string, kind?: 'report'): void => findings.add(`${kind === 'report' ? `${PROG}: ` : ''}${line}\n`);
    const report = await check(filename, { format, repair, forceShare: args.flags.has('forceShare'), onFinding, findingsTaken: () => findings.taken(), onWarning: warningPrinter(io), ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args), ...ingestFrom(args) });
    findings.flush();
    if (!quiet && report.doubleChecked && output === 'human') {
      io.stdout(
        `The following inconsistencies were found and repaired:\n\n    ${report.leaksFixed} leaked clusters\n    ${report.corruptionsFixed} corruptions\n\nDouble checking the fixed image now...\n`,
      );
    }
    if (!quiet) io.stdout(output === 'json' ? formatQemuJson(toQemuJson(report)) + '\n' : formatCheckHuman(report));
    if (report.checkErrors) {
      io.stderr(`${PROG}: Check failed\n`);
      return 1;
    }
    return report.corruptions ? 2 : report.leaks ? 3 : 0;
  } catch (err) {
    findings.flush();
    const exit = err instanceof VdiskError ? err.exitCode : undefined;
    const code = reportError(io, err);
    return exit ?? code;
  }
}
