import { cFixed } from '../core/c-format.js';
import type { Job } from '../core/job.js';
import type { JobProgress } from '../core/progress.js';
import type { CliIo } from './context.js';

function line(p: JobProgress): string {
  const pct = p.total > 0 ? (p.done * 100) / p.total : 0;
  return `    (${cFixed(pct, 2)}/100%)\r`;
}

/**
 * qemu-img's `-p` line (`    (NN.NN/100%)\r`, a newline at the end), or,
 * without `-p`, one line on SIGUSR1. Returns a function that detaches:
 * after a success it shows 100% and ends the line, unless `open` (the
 * caller prints its result first and then ends the line itself).
 */
export function attachProgress(job: Job<unknown>, io: CliIo, show: boolean): (ok?: boolean, open?: boolean) => void {
  let last: JobProgress = { phase: '', done: 0, total: 0 };
  let printed = '';
  const onProgress = (p: JobProgress): void => {
    last = p;
    if (!show) return;
    // A line is printed when it reads differently, as qemu prints a changed value only.
    const text = line(p);
    if (text === printed) return;
    printed = text;
    io.stdout(text);
  };
  const onSignal = (): void => io.stdout(line(last));
  // SIGINT and SIGTERM abort the job the way the API's abort does: the target is cleaned up.
  const onStop = (): void => job.cancel(new Error('interrupted by signal'));
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  job.on('progress', onProgress);
  if (!show) process.on('SIGUSR1', onSignal);
  if (show) {
    printed = line(last);
    io.stdout(printed);
  }
  return (ok = true, open = false) => {
    job.off('progress', onProgress);
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    if (!show) process.off('SIGUSR1', onSignal);
    else if (ok && open) return;
    else if (ok) io.stdout(line({ phase: last.phase, done: 1, total: 1 }) + '\n'); // 100%, an empty job's too
    else io.stdout('\n');
  };
}

/**
 * Awaits `job` with qemu-img's progress line (when `show`) and signal
 * handling, detaching either way; `open` leaves the line as the job left it
 * (see {@link attachProgress}).
 */
export async function awaitWithProgress<T>(job: Job<T>, io: CliIo, show: boolean, open = false): Promise<T> {
  const detach = attachProgress(job as Job<unknown>, io, show);
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
