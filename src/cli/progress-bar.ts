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
  const pct = p.total > 0 ? (p.done * 100) / p.total : 0;
  return `    (${cFixed(pct, 2)}/100%)\r`;
}

/** One `--progress=json` line; `eta` is null while unknown, so every line has the same keys. */
function jsonLine(p: JobProgress): string {
  const { phase, done, total, percent, bytesPerSecond, eta } = p;
  return JSON.stringify({ phase, done, total, percent, bytesPerSecond, eta: eta ?? null }) + '\n';
}

/**
 * qemu-img's `-p` line (`    (NN.NN/100%)\r`, a newline at the end), JSON
 * lines on stderr for `--progress=json`, or, with neither, one line on
 * SIGUSR1. Returns a function that detaches: after a success the `-p` line
 * shows 100% and ends, unless `open` (the caller prints its result first
 * and then ends the line itself).
 */
export function attachProgress(job: Job<unknown>, io: CliIo, mode: ProgressMode, minSkip = 1): (ok?: boolean, open?: boolean) => void {
  let last: JobProgress | undefined;
  let printed = '';
  let printedPct = 0;
  const onProgress = (p: JobProgress): void => {
    last = p;
    if (mode === 'json') io.stderr(jsonLine(p));
    // qemu-img draws its 100% only as it ends the line (see the detach below), not for the job's final event.
    if (mode !== 'bar' || p.percent === 100) return;
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
  if (mode === 'bar') {
    printed = line({ done: 0, total: 0 });
    io.stdout(printed);
  }
  return (ok = true, open = false) => {
    job.off('progress', onProgress);
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    if (mode !== 'bar') process.off('SIGUSR1', onSignal);
    else if (ok && open) return;
    else if (ok) io.stdout(line({ done: 1, total: 1 }) + '\n'); // 100%, an empty job's too
    else io.stdout('\n');
  };
}

/**
 * Awaits `job` with the progress `mode` asked for and signal handling,
 * detaching either way; `open` leaves the `-p` line as the job left it
 * (see {@link attachProgress}).
 */
export async function awaitWithProgress<T, P extends string>(job: Job<T, P>, io: CliIo, mode: ProgressMode, open = false, minSkip = 1): Promise<T> {
  const detach = attachProgress(job as unknown as Job<unknown>, io, mode, minSkip);
  let result: T;
  try {
    result = await job;
  } catch (err) {
    detach(false);
    throw err;
  }
  detach(true, open);
  return result;
}
