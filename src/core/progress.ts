/** Progress of a long job, in bytes of its current phase. */
export interface JobProgress {
  /** What the job is doing ("copy", "scan", ...). */
  readonly phase: string;
  /** Work done so far; never goes back within a phase. */
  readonly done: number;
  /** Work known so far; may grow. */
  readonly total: number;
}

/**
 * Counts progress and emits throttled updates: at most one every
 * `intervalMs` unless a whole percent has passed, plus a final 100% event.
 */
export class ProgressMeter {
  #phase = '';
  #done = 0;
  #total = 0;
  #lastEmit = 0;
  #lastPercent = -1;
  readonly #emit: (p: JobProgress) => void;
  readonly #intervalMs: number;

  constructor(emit: (p: JobProgress) => void, intervalMs = 100) {
    this.#emit = emit;
    this.#intervalMs = intervalMs;
  }

  /** Starts a phase; `done` starts again from zero. */
  phase(name: string, total: number): void {
    this.#phase = name;
    this.#done = 0;
    this.#total = total;
    this.#lastPercent = -1;
    this.#send(true);
  }

  /** Adds work to the current phase's total. */
  grow(bytes: number): void {
    this.#total += bytes;
  }

  /** Records `bytes` more done. */
  advance(bytes: number): void {
    this.#done = Math.min(this.#total, this.#done + bytes);
    this.#send(false);
  }

  /** Marks the phase complete and always emits. */
  finish(): void {
    this.#done = this.#total;
    this.#send(true);
  }

  /** The latest state. */
  get current(): JobProgress {
    return { phase: this.#phase, done: this.#done, total: this.#total };
  }

  #send(force: boolean): void {
    const now = Date.now();
    const percent = this.#total > 0 ? Math.floor((this.#done * 100) / this.#total) : 100;
    if (!force && now - this.#lastEmit < this.#intervalMs && percent === this.#lastPercent) return;
    this.#lastEmit = now;
    this.#lastPercent = percent;
    this.#emit(this.current);
  }
}
