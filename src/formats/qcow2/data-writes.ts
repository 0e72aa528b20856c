/**
 * Guest data writes a qcow2 writer starts without waiting for them: under
 * beginWrite, the metadata step (allocation, L2 entries) ends while the data
 * is still landing, so the next write can allocate meanwhile. Crash order
 * holds because nothing writes an L2 table before landed() has settled.
 */
import { settleAll } from '../../core/settle.js';

export class DataWrites {
  readonly #inflight = new Set<Promise<void>>();
  #batch: Promise<void>[] | undefined;
  readonly #onFailure: (err: Error) => void;

  /** `onFailure` hears of every failed write (an L2 entry in memory may point at its cluster). */
  constructor(onFailure: (err: Error) => void) {
    this.#onFailure = onFailure;
  }

  /** True inside collect(): started writes join its batch instead of being awaited by the caller. */
  get collecting(): boolean {
    return this.#batch !== undefined;
  }

  /** Runs `step`, collecting the writes it starts; returns the wait for them (first failure thrown). */
  async collect(step: () => Promise<void>): Promise<() => Promise<void>> {
    const batch: Promise<void>[] = [];
    this.#batch = batch;
    try {
      await step();
    } catch (err) {
      // Writes the step started before failing still land or fail on their own; the step's error is the one reported.
      settleAll(batch).catch(() => undefined);
      throw err;
    } finally {
      this.#batch = undefined;
    }
    return () => settleAll(batch);
  }

  /** Starts a write; it counts as in flight until it settles. */
  start(write: () => Promise<void>): Promise<void> {
    const p = write().catch((err: unknown) => {
      this.#onFailure(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    const tracked = p.then(
      () => { this.#inflight.delete(tracked); },
      () => { this.#inflight.delete(tracked); },
    );
    this.#inflight.add(tracked);
    this.#batch?.push(p);
    return p;
  }

  /** Waits until every started write has landed (or failed). */
  async landed(): Promise<void> {
    if (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
  }
}
