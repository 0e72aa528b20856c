/**
 * check: consistency check and repair, as `qemu-img check [-r leaks|all]`.
 * Damage is data (a {@link CheckReport}); only open failures and checks
 * that cannot complete are errors. After a repair that changed something,
 * the image is checked again and the report describes the state after
 * repair, with the repair pass's fixed counts, as qemu-img does.
 */
import { BlockDevice } from '../block/device.js';
import { targetName, type ImageTarget, type OpenImageOptions } from '../block/chain.js';
import { InvalidArgumentError, IoError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import type { CheckCounts, CheckRepair } from '../block/types.js';

export type { CheckRepair } from '../block/types.js';

/** Phases of {@link check}: `check` (metadata table entries walked), then `recheck` after a repair, as qemu-img checks again. */
export type CheckPhase = 'check' | 'recheck';

/** Options of {@link check}. */
export interface CheckOptions extends Omit<OpenImageOptions, 'readOnly' | 'check'>, JobOptions<CheckPhase> {
  /** What to repair (`-r`): 'none' (default), 'leaks', or 'all'. Repairs open the image read/write. */
  repair?: CheckRepair | undefined;
  /**
   * Receives each detail line as it is found ("Leaked cluster 5 refcount=1
   * reference=0", "ERROR ..."), in qemu's wording; `kind` 'report' marks
   * lines qemu-img prefixes with its name.
   */
  onFinding?: ((line: string, kind?: 'report') => void) | undefined;
  /**
   * Resolves once the lines `onFinding` received have been taken up (a CLI:
   * its stderr drained). A check that can find millions of things awaits it
   * now and then, so a slow reader holds its memory flat.
   */
  findingsTaken?: (() => Promise<void>) | undefined;
}

/** What {@link check} found: qemu's ImageCheck, in camelCase. */
export interface CheckReport extends CheckCounts {
  /** The image as named by the caller. */
  readonly filename: string;
  /** Its format. */
  readonly format: string;
  /** True when a repair changed something and the image was checked again ("Double checking the fixed image now..."). */
  readonly doubleChecked: boolean;
  /** Detail lines, in order (at most 1000; all of them go to `onFinding`). */
  readonly findings: readonly string[];
}

/** Most detail lines kept in the report. */
const MAX_FINDINGS = 1000;

function validRepair(repair: unknown): CheckRepair {
  if (repair === undefined || repair === 'none') return 'none';
  if (repair === 'leaks' || repair === 'all') return repair;
  throw new InvalidArgumentError(`Unknown repair mode (expecting 'leaks' or 'all'): ${String(repair)}`);
}

async function runCheck(filename: ImageTarget, options: CheckOptions, ctx: JobContext<CheckPhase>): Promise<CheckReport> {
  const repair = validRepair(options.repair);
  if (repair !== 'none' && options.forceShare) {
    throw new InvalidArgumentError(`Could not open '${targetName(filename)}': force-share=on can only be used with read-only images`);
  }
  const dev = await BlockDevice.open(filename, { ...options, readOnly: repair === 'none', check: true });
  try {
    const top = dev.top;
    if (!dev.canCheck || (repair !== 'none' && !dev.canRepair)) {
      throw new UnsupportedError('This image format does not support checks', { exitCode: 63 });
    }
    const findings: string[] = [];
    const log = (line: string, kind?: 'report'): void => {
      if (findings.length < MAX_FINDINGS) findings.push(line);
      options.onFinding?.(line, kind);
    };
    let started = false;
    let phase: CheckPhase = 'check';
    const onProgress = (done: number, total: number): void => {
      if (!started) ctx.progress.phase(phase, total);
      started = true;
      ctx.progress.advance(done - ctx.progress.current.done);
    };
    const run = async (mode: CheckRepair): Promise<CheckCounts> => {
      try {
        return await dev.check({ repair: mode, signal: ctx.signal, log, onProgress, logged: options.findingsTaken });
      } catch (err) {
        if (err instanceof VdiskError && err.code === 'EABORTED') throw err;
        const why = err instanceof IoError ? err.message : err instanceof Error ? err.message : String(err);
        throw new IoError(`Check failed: ${why}`, { cause: err, exitCode: 1 });
      }
    };
    const first = await run(repair);
    ctx.progress.finish();
    if (first.corruptionsFixed === 0 && first.leaksFixed === 0) {
      return { ...first, filename: targetName(filename), format: top.format, doubleChecked: false, findings };
    }
    started = false;
    phase = 'recheck';
    const second = await run('none');
    return {
      ...second,
      corruptionsFixed: first.corruptionsFixed,
      leaksFixed: first.leaksFixed,
      filename: targetName(filename),
      format: top.format,
      doubleChecked: true,
      findings,
    };
  } finally {
    await dev.close();
  }
}

/**
 * Checks an image's consistency and, with `repair`, repairs it in place
 * (qemu-img check). Safe to re-run after a crash: every repair step is
 * ordered so an interrupted repair leaves at worst leaked clusters.
 *
 * @example
 * ```ts
 * const report = await check('disk.qcow2', { repair: 'leaks' });
 * if (report.corruptions) console.log('damaged:', report.findings);
 * ```
 * @throws {UnsupportedError} EUNSUPPORTED "This image format does not support checks" (`exitCode` 63),
 *   {@link IoError} EIO "Check failed: ..." when the check cannot complete, open errors
 */
export function check(filename: ImageTarget, options: CheckOptions = {}): Job<CheckReport, CheckPhase> {
  return new Job((ctx) => runCheck(filename, options, ctx), options);
}
