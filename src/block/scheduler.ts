/**
 * The coroutine-style part of vdisk (after qemu-img convert's coroutines and
 * Deno's pooledMap): up to `parallel` work items in flight, each read
 * independently, written in item order unless `ordered` is false. The first
 * error stops new work, running items drain, and the first error is thrown:
 * later ones are nearly always its consequences (the same bad range read by
 * the planner and by a reader), and a single typed error is what callers
 * match on.
 */
import { throwIfAborted } from '../core/abort.js';

/** How a pipeline runs. */
export interface PipelineOptions {
  /** Items in flight at once (qemu-img's `-m`, default 8). */
  readonly parallel: number;
  /** Write in item order (default), or as soon as each item is read (`-W`). */
  readonly ordered: boolean;
  /** Stops taking new items when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** One pipeline stage set: produce items, read each, write each. */
export interface PipelineStages<T, R> {
  /** The next item, or undefined when there are no more. Called one at a time, in order. */
  next(): Promise<T | undefined>;
  /** Reads (and may transform, e.g. compress) an item; runs concurrently. */
  read(item: T): Promise<R>;
  /**
   * Writes an item; in order when `ordered`. Order means the order in which
   * writes are *issued*: a stage that has handed all its requests to the
   * device (whose queue keeps their order) calls `issued()`, and the next
   * item's write may start while this one's data is still being written.
   * Without the call, the next write waits for this one to finish.
   */
  write(item: T, data: R, issued: () => void): Promise<void>;
}

/** Runs the pipeline to completion. */
export async function runPipeline<T, R>(stages: PipelineStages<T, R>, options: PipelineOptions): Promise<void> {
  const parallel = Math.max(1, Math.floor(options.parallel));
  // next() runs one call at a time: each take waits for the one before (a bare promise chain,
  // which costs less per item than a general limiter).
  let producer: Promise<unknown> = Promise.resolve();
  // Every failure with its item's place: the first item's failure is the one reported (as qemu-img,
  // whose writes fail in order), whichever failed first in time.
  const errors: { err: unknown; seq: number }[] = [];
  let issued = 0;
  let written = 0;
  let done = false;
  const turns = new Map<number, () => void>();

  const waitTurn = (seq: number): Promise<void> => {
    if (!options.ordered || seq === written || errors.length > 0) return Promise.resolve();
    return new Promise((resolve) => turns.set(seq, resolve));
  };
  const finishTurn = (): void => {
    written++;
    const wake = turns.get(written);
    if (wake) {
      turns.delete(written);
      wake();
    }
  };
  const release = (): void => {
    // After a failure, wake every waiter so workers can drain.
    for (const [seq, wake] of turns) {
      turns.delete(seq);
      wake();
    }
  };

  const step = async (): Promise<{ item: T; seq: number } | undefined> => {
    if (done || errors.length > 0) return undefined;
    throwIfAborted(options.signal);
    const item = await stages.next();
    if (item === undefined) {
      done = true;
      return undefined;
    }
    return { item, seq: issued++ };
  };
  const take = (): Promise<{ item: T; seq: number } | undefined> => {
    const turn = producer.then(step);
    producer = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      let job: { item: T; seq: number } | undefined;
      try {
        job = await take();
      } catch (err) {
        errors.push({ err, seq: issued });
        release();
        return;
      }
      if (!job) return;
      try {
        const data = await stages.read(job.item);
        await waitTurn(job.seq);
        if (errors.length > 0) return;
        let turnDone = false;
        const issued = (): void => {
          if (turnDone) return;
          turnDone = true;
          finishTurn();
        };
        await stages.write(job.item, data, issued);
        issued();
      } catch (err) {
        errors.push({ err, seq: job.seq });
        release();
        return;
      }
    }
  };

  await Promise.all(Array.from({ length: parallel }, worker));
  if (errors.length > 0) throw errors.reduce((a, b) => (b.seq < a.seq ? b : a)).err;
}
