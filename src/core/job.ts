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

/** Events a {@link Job} emits. */
export interface JobEvents {
  /** Throttled progress of the current phase. */
  progress: [JobProgress];
  /** A non-fatal condition. */
  warning: [VdiskWarning];
  /** A lifecycle change. */
  state: [JobState];
}

/** Options every job accepts. */
export interface JobOptions {
  /** Aborts the job; sources are never modified, see each job for the target. */
  signal?: AbortSignal | undefined;
  /** Shorthand for `job.on('progress', fn)`. */
  onProgress?: ((p: JobProgress) => void) | undefined;
}

/** What a job body receives. */
export interface JobContext {
  /** Aborted by the caller's signal or by {@link Job.cancel}. */
  readonly signal: AbortSignal;
  /** Progress counter feeding the `progress` event. */
  readonly progress: ProgressMeter;
  /** Emits a `warning` event. */
  warn(warning: VdiskWarning): void;
}

/**
 * A running job: awaitable like a promise, an EventEmitter of typed
 * `progress`, `warning` and `state` events, cancellable.
 *
 * @example
 * ```ts
 * const job = convert('a.raw', 'b.qcow2', { targetFormat: 'qcow2' });
 * job.on('progress', (p) => console.log(p.done, '/', p.total));
 * const result = await job;
 * ```
 */
export class Job<T> extends EventEmitter<JobEvents> implements Promise<T> {
  /** `[object Job]`. */
  readonly [Symbol.toStringTag] = 'Job';
  readonly #controller = new AbortController();
  readonly #promise: Promise<T>;
  #state: JobState = 'pending';

  /** The job's own signal: aborted by the caller's signal or by {@link Job.cancel}. */
  readonly signal: AbortSignal;

  constructor(body: (ctx: JobContext) => Promise<T>, options: JobOptions = {}) {
    super();
    this.signal = options.signal ? AbortSignal.any([options.signal, this.#controller.signal]) : this.#controller.signal;
    if (options.onProgress) this.on('progress', options.onProgress);
    const ctx: JobContext = {
      signal: this.signal,
      progress: new ProgressMeter((p) => this.emit('progress', p)),
      warn: (w) => this.emit('warning', w),
    };
    // Start on a later tick so callers can attach listeners first.
    this.#promise = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      this.#setState('running');
      try {
        if (this.signal.aborted) throw toAbortError(this.signal.reason);
        const value = await body(ctx);
        this.#setState('done');
        return value;
      } catch (err) {
        this.#setState(this.signal.aborted ? 'aborted' : 'failed');
        throw this.signal.aborted ? toAbortError(this.signal.reason) : err;
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
