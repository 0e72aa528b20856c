import { EventEmitter } from 'node:events';

import { toAbortError } from './abort.js';
import { ProgressMeter, type JobProgress } from './progress.js';

/** Lifecycle of a job: pending → running → done | failed | aborted. */
export type JobState = 'pending' | 'running' | 'done' | 'failed' | 'aborted';

/** A non-fatal condition a job reports (qemu-img prints these as warnings). */
export interface VdiskWarning {
  /** Short stable identifier. */
  readonly code: string;
  /** Human message, printed by the CLI as `vdisk: warning: ...`. */
  readonly message: string;
}

/** Events a {@link Job} emits; `P` is the job's union of phase names. */
export interface JobEvents<P extends string = string> {
  /** Throttled progress of the current phase; see {@link JobProgress} for when 100% comes. */
  progress: [JobProgress<P>];
  /** A non-fatal condition. */
  warning: [VdiskWarning];
  /** A lifecycle change. */
  state: [JobState];
}

/** Options every job accepts; `P` is the job's union of phase names. */
export interface JobOptions<P extends string = string> {
  /** Aborts the job; sources are never modified, see each job for the target. */
  signal?: AbortSignal | undefined;
  /** Shorthand for `job.on('progress', fn)`. */
  onProgress?: ((p: JobProgress<P>) => void) | undefined;
}

/** What a job body receives. */
export interface JobContext<P extends string = string> {
  /** Aborted by the caller's signal or by {@link Job.cancel}. */
  readonly signal: AbortSignal;
  /** Progress counter feeding the `progress` event. */
  readonly progress: ProgressMeter<P>;
  /** Emits a `warning` event. */
  warn(warning: VdiskWarning): void;
}

/**
 * A running job: awaitable like a promise, an EventEmitter of typed
 * `progress`, `warning` and `state` events, cancellable. `P` is the union
 * of the job's phase names. Progress events stop when the job is aborted
 * or settles; a successful job's last event, and only that one, is at 100%.
 *
 * @example
 * ```ts
 * const job = convert('a.raw', 'b.qcow2', { targetFormat: 'qcow2' });
 * job.on('progress', (p) => console.log(p.phase, `${p.percent}%`, p.bytesPerSecond, 'B/s, eta', p.eta));
 * const result = await job;
 * ```
 */
export class Job<T, P extends string = string> extends EventEmitter<JobEvents<P>> implements Promise<T> {
  /** `[object Job]`. */
  readonly [Symbol.toStringTag] = 'Job';
  readonly #controller = new AbortController();
  readonly #promise: Promise<T>;
  #state: JobState = 'pending';

  /** The job's own signal: aborted by the caller's signal or by {@link Job.cancel}. */
  readonly signal: AbortSignal;

  constructor(body: (ctx: JobContext<P>) => Promise<T>, options: JobOptions<P> = {}) {
    super();
    this.signal = options.signal ? AbortSignal.any([options.signal, this.#controller.signal]) : this.#controller.signal;
    if (options.onProgress) this.on('progress', options.onProgress);
    const meter = new ProgressMeter<P>((p) => this.emit('progress', p));
    // Silent from the abort on: a body still unwinding must not report progress the caller has given up on.
    const silence = (): void => meter.stop();
    if (this.signal.aborted) meter.stop();
    else this.signal.addEventListener('abort', silence, { once: true });
    const ctx: JobContext<P> = {
      signal: this.signal,
      progress: meter,
      warn: (w) => this.emit('warning', w),
    };
    // Start on a later tick so callers can attach listeners first.
    this.#promise = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      this.#setState('running');
      try {
        if (this.signal.aborted) throw toAbortError(this.signal.reason);
        const value = await body(ctx);
        if (!this.signal.aborted) meter.complete();
        meter.stop();
        this.#setState('done');
        return value;
      } catch (err) {
        meter.stop();
        this.#setState(this.signal.aborted ? 'aborted' : 'failed');
        throw this.signal.aborted ? toAbortError(this.signal.reason) : err;
      } finally {
        this.signal.removeEventListener('abort', silence);
      }
    });
    // An unobserved failure must not crash the process before the caller awaits.
    this.#promise.catch(() => undefined);
  }

  /** Current lifecycle state. */
  get state(): JobState {
    return this.#state;
  }

  /** Aborts the job; the promise then rejects with an AbortError. */
  cancel(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#promise.then(onfulfilled, onrejected);
  }

  /** Same as `Promise.prototype.catch`. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#promise.catch(onrejected);
  }

  /** Same as `Promise.prototype.finally`. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#promise.finally(onfinally);
  }

  #setState(state: JobState): void {
    this.#state = state;
    this.emit('state', state);
  }
}
