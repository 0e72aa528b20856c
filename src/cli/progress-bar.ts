import { cFixed } from '../core/c-format.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Job } from '../core/job.js';
import type { JobProgress } from '../core/progress.js';
import { last, type OptSpec, type ParsedArgs } from './args.js';
import type { CliIo } from './context.js';

/** How a command shows progress: not at all, qemu-img's `-p` line, or JSON lines on stderr. */
export type ProgressMode = 'off' | 'bar' | 'json';

/** `-p`, `--progress` and vdisk's `--progress=json`, for every command that has qemu-img's `-p`. */
export const PROGRESS_OPTION: OptSpec = { key: 'progress', short: 'p', long: ['progress'], optionalArg: true };

/**
 * The progress mode asked for. `-q` silences qemu-img's line, as in qemu-img,
 * but not `--progress=json`: that is machine output a caller asked for by name.
 *
 * @throws {InvalidArgumentError} for a `--progress=` value other than `json`
 */
export function progressMode(args: ParsedArgs, quiet: boolean): ProgressMode {
  if (!args.flags.has('progress')) return 'off';
  const value = last(args, 'progress');
  if (value === 'json') return 'json';
  if (value !== undefined) throw new InvalidArgumentError(`--progress must be used with no argument or json as argument.`);
  return quiet ? 'off' : 'bar';
}

function line(p: Pick<JobProgress, 'done' | 'total'>): string {
  return percentLine(p.total > 0 ? (p.done * 100) / p.total : 0);
}

function percentLine(pct: number): string {
  return `    (${cFixed(pct, 2)}/100%)\r`;
}

/** One `--progress=json` line; `eta` is null while unknown, so every line has the same keys. */
function jsonLine(p: JobProgress): string {
  const { phase, done, total, percent, bytesPerSecond, eta } = p;
  return JSON.stringify({ phase, done, total, percent, bytesPerSecond, eta: eta ?? null }) + '\n';
}

/**
 * Where a command's `-p` line starts and how it ends, where qemu-img's
 * command differs from the plain case (its line drawn at once, a newline
 * after a failure, 100% and a newline after a success).
 */
export interface BarOptions {
  /** After a success, leave the line as the job left it (the caller prints its result, then ends the line). */
  readonly open?: boolean | undefined;
  /** Least step between two lines, in percent (qemu_progress_init's second argument; default 1). */
  readonly minSkip?: number | undefined;
  /**
   * When the first line (0%) is drawn: at once (the default), at the job's
   * first progress event (qemu-img draws it once the images are open), or
   * never (the command drew it already, see {@link drawFirstLine}).
   */
  readonly first?: 'now' | 'first-event' | 'drawn' | undefined;
  /** A failure before the first line is drawn ends with a newline (qemu-img had set its progress up) instead of nothing. */
  readonly newlineBeforeFirst?: boolean | undefined;
  /** Whether a failure after the first line shows 100% before its newline (qemu-img draws it whatever the outcome). */
  readonly hundredOnFailure?: ((err: unknown) => boolean) | undefined;
  /** Whether the job's events draw the lines between the first and the last (default); false when the command draws them (see {@link qemuProgressPrinter}). */
  readonly drawSteps?: boolean | undefined;
}

/** The first `-p` line, for a command that draws it before its own checks, as qemu-img does (then `first: 'drawn'`). */
export function drawFirstLine(io: CliIo, mode: ProgressMode): void {
  if (mode === 'bar') io.stdout(line({ done: 0, total: 0 }));
}

/**
 * qemu-img's `-p` line (`    (NN.NN/100%)\r`, a newline at the end), JSON
 * lines on stderr for `--progress=json`, or, with neither, one line on
 * SIGUSR1. Returns a function that detaches, told whether the job
 * succeeded and, if not, its error (see {@link BarOptions}).
 */
export function attachProgress(job: Job<unknown>, io: CliIo, mode: ProgressMode, bar: BarOptions = {}): (ok: boolean, err?: unknown) => void {
  const minSkip = bar.minSkip ?? 1;
  let last: JobProgress | undefined;
  let printed = '';
  let printedPct = 0;
  let started = bar.first === 'drawn';
  const start = (): void => {
    if (started || mode !== 'bar') return;
    started = true;
    printed = line({ done: 0, total: 0 });
    io.stdout(printed);
  };
  if (started) printed = line({ done: 0, total: 0 });
  const onProgress = (p: JobProgress): void => {
    last = p;
    if (mode === 'json') io.stderr(jsonLine(p));
    start();
    // qemu-img draws its 100% only as it ends the line (see the detach below), not for the job's final event.
    if (mode !== 'bar' || p.percent === 100 || bar.drawSteps === false) return;
    // qemu-progress prints a value only once it has moved more than the command's step from the last one printed.
    const pct = p.total > 0 ? (p.done * 100) / p.total : 0;
    if (pct !== 0 && pct !== 100 && pct <= printedPct + minSkip && pct >= printedPct - minSkip) return;
    // A line is printed when it reads differently, as qemu prints a changed value only.
    const text = line(p);
    if (text === printed) return;
    printed = text;
    printedPct = pct;
    io.stdout(text);
  };
  const onSignal = (): void => {
    if (mode === 'json' && last) io.stderr(jsonLine(last));
    else if (mode !== 'json') io.stdout(line(last ?? { done: 0, total: 0 }));
  };
  // SIGINT and SIGTERM abort the job the way the API's abort does: the target is cleaned up.
  const onStop = (): void => job.cancel(new Error('interrupted by signal'));
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  job.on('progress', onProgress);
  if (mode !== 'bar') process.on('SIGUSR1', onSignal);
  if (bar.first === undefined || bar.first === 'now') start();
  return (ok, err) => {
    job.off('progress', onProgress);
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    if (mode !== 'bar') {
      process.off('SIGUSR1', onSignal);
      return;
    }
    if (!ok && !started) {
      if (bar.newlineBeforeFirst) io.stdout('\n');
      return;
    }
    start();
    if (ok && bar.open) return;
    const hundred = line({ done: 1, total: 1 });
    // After a failure qemu-img's 100% follows work it skipped without drawing (vdisk's events count it): not twice.
    if (ok || (bar.hundredOnFailure?.(err) && printed !== hundred)) io.stdout(hundred + '\n'); // 100%, an empty job's too
    else io.stdout('\n');
  };
}

/**
 * qemu_progress_print(100.f * done / total, 0) for a command that hands
 * qemu's status callbacks through unchanged (amend): single-precision
 * arithmetic as qemu's, a line whenever the value passed the last one
 * drawn by more than `minSkip` either way, and at 0 and 100 always, repeats
 * included.
 */
export function qemuProgressPrinter(io: CliIo, minSkip = 1): (done: number, total: number) => void {
  const f = Math.fround;
  let lastPrint = 0;
  return (done, total) => {
    if (!(total > 0)) return;
    const current = Math.min(100, f(f(100 * f(done)) / f(total)));
    if (current > f(lastPrint + minSkip) || current < f(lastPrint - minSkip) || current === 100 || current === 0) {
      lastPrint = current;
      io.stdout(percentLine(current));
    }
  };
}

/**
 * Awaits `job` with the progress `mode` asked for and signal handling,
 * detaching either way (see {@link attachProgress} and {@link BarOptions}).
 */
export async function awaitWithProgress<T, P extends string>(job: Job<T, P>, io: CliIo, mode: ProgressMode, bar: BarOptions = {}): Promise<T> {
  const detach = attachProgress(job as unknown as Job<unknown>, io, mode, bar);
  let result: T;
  try {
    result = await job;
  } catch (err) {
    detach(false, err);
    throw err;
  }
  detach(true);
  return result;
}
