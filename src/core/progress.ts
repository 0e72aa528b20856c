import { RateWindow } from './rate-window.js';

/**
 * Progress of a long job. `P` is the job's union of phase names (for
 * example {@link ConvertPhase}); `done` and `total` count the current
 * phase's work, in bytes for every phase except `bench` (requests),
 * `check`/`recheck` (metadata table entries) and `amend` (percent).
 *
 * `percent` is the current phase's share done, 0–100, and never goes back
 * within a phase. While the job runs it stays below 100, even once a
 * phase's `done` reaches its `total` (work such as closing or renaming the
 * target may remain); exactly one event has `percent` 100: the job's last,
 * emitted when it succeeds (its `done` may be below `total` when the job
 * had its answer early, as compare does at a first difference). After the
 * job fails, is aborted or settles, no event is emitted. A job with
 * several phases starts each at 0.
 */
export interface JobProgress<P extends string = string> {
  /** What the job is doing: one of the job's phase names. */
  readonly phase: P;
  /** Work done so far in this phase; never goes back within a phase. */
  readonly done: number;
  /** Work known so far in this phase; may grow. */
  readonly total: number;
  /** Share of this phase done, 0–100 with two decimals; 100 only in the job's final event. */
  readonly percent: number;
  /** Units of `done` per second over the last few seconds (not since the start); 0 until measurable. */
  readonly bytesPerSecond: number;
  /** Seconds until the phase completes at the current rate; undefined while the rate is unknown. */
  readonly eta: number | undefined;
}

/** Settings of a {@link ProgressMeter}; tests inject the clock. */
export interface ProgressMeterOptions {
  /** Least time between two events, unless a whole percent has passed (default 100 ms). */
  readonly intervalMs?: number;
  /** How far back `bytesPerSecond` looks (default 5000 ms). */
  readonly windowMs?: number;
  /** Milliseconds from a monotonic clock (default `process.hrtime`, else `performance.now`). */
  readonly clock?: () => number;
}

/**
 * Milliseconds from Node's monotonic clock. Not `performance.now`: in Node the
 * `performance` global loads perf_hooks on first use, ~3 ms of a short
 * command's start-up. Browsers (no `process.hrtime`) keep `performance.now`.
 */
const monotonicMs: () => number =
  typeof process === 'object' && typeof process.hrtime === 'function'
    ? () => {
        const [s, ns] = process.hrtime();
        return s * 1e3 + ns / 1e6;
      }
    : () => performance.now();

/** Highest percent a running job reports: 100 is its final event's alone. */
const RUNNING_CAP = 99.99;

/**
 * Counts a job's progress and emits throttled {@link JobProgress} events:
 * at most one every `intervalMs` unless a whole percent has passed, one at
 * each phase's start and end, and the final 100% event from
 * {@link ProgressMeter.complete}. After {@link ProgressMeter.stop} it is silent.
 */
export class ProgressMeter<P extends string = string> {
  #phase: P | undefined;
  #done = 0;
  #total = 0;
  #percent = 0;
  #lastEmit = -Infinity;
  #lastWhole = -1;
  /** `done` of the last event, so a phase's end is not reported twice. */
  #lastDone = -1;
  #stopped = false;
  readonly #emit: (p: JobProgress<P>) => void;
  readonly #intervalMs: number;
  readonly #clock: () => number;
  readonly #rate: RateWindow;

  constructor(emit: (p: JobProgress<P>) => void, options: ProgressMeterOptions = {}) {
    this.#emit = emit;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#clock = options.clock ?? monotonicMs;
    const windowMs = options.windowMs ?? 5000;
    // A rate over less than a fiftieth of the window is mostly timer noise.
    this.#rate = new RateWindow(windowMs, windowMs / 50);
  }

  /** Starts a phase; `done` and `percent` start again from zero. */
  phase(name: P, total: number): void {
    this.#phase = name;
    this.#done = 0;
    this.#total = total;
    this.#percent = 0;
    this.#lastWhole = -1;
    this.#lastDone = -1;
    this.#rate.reset(this.#clock(), 0);
    this.#send(true);
  }

  /** Adds work to the current phase's total. */
  grow(bytes: number): void {
    this.#total += bytes;
  }

  /** Records `bytes` more done. */
  advance(bytes: number): void {
    this.#done = Math.min(this.#total, this.#done + bytes);
    // One clock read per call: a copy advances once per request, thousands of times a second.
    const now = this.#clock();
    this.#rate.record(now, this.#done);
    this.#send(false, now);
  }

  /** Marks the phase complete and emits, unless the last event already said so (below 100%: see {@link JobProgress}). */
  finish(): void {
    this.#done = this.#total;
    this.#rate.record(this.#clock(), this.#done);
    if (this.#lastDone !== this.#done) this.#send(true);
  }

  /**
   * Emits the job's one 100% event (once the job has succeeded), then stops.
   * `done` stays what it was: a job may finish early (compare stops at the
   * first difference). A job that never started a phase emits nothing.
   */
  complete(): void {
    if (this.#stopped || this.#phase === undefined) {
      this.stop();
      return;
    }
    this.#percent = 100;
    const final = { ...this.current, eta: 0 };
    this.stop();
    this.#emit(final);
  }

  /** Emits nothing more (the job failed, was aborted or settled). */
  stop(): void {
    this.#stopped = true;
  }

  /** The latest state; `phase` is `''` before the first phase starts. */
  get current(): JobProgress<P> {
    const t = this.#clock();
    const bytesPerSecond = Math.round(this.#rate.rate(t, this.#done));
    const left = this.#total - this.#done;
    const eta = left <= 0 ? 0 : bytesPerSecond > 0 ? Math.ceil((left * 10) / bytesPerSecond) / 10 : undefined;
    // Before any phase the name is empty; no event is emitted then (see #send), so listeners never see it.
    const phase = this.#phase ?? ('' as P);
    return { phase, done: this.#done, total: this.#total, percent: this.#percent, bytesPerSecond, eta };
  }

  #send(force: boolean, now = this.#clock()): void {
    // Before a phase there is nothing to name: a job that reports no phases emits nothing.
    if (this.#stopped || this.#phase === undefined) return;
    const exact = this.#total > 0 ? Math.floor((this.#done * 10000) / this.#total) / 100 : 0;
    this.#percent = Math.max(this.#percent, Math.min(RUNNING_CAP, exact));
    // Throttled on the uncapped whole percent, so a phase's last step is not held back (the CLI's bar draws it).
    const whole = this.#total > 0 ? Math.floor((this.#done * 100) / this.#total) : 100;
    if (!force && now - this.#lastEmit < this.#intervalMs && whole === this.#lastWhole) return;
    this.#lastEmit = now;
    this.#lastWhole = whole;
    this.#lastDone = this.#done;
    this.#emit(this.current);
  }
}
