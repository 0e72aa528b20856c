/**
 * Bounded concurrency for ranged GETs, with coalescing: while every slot is
 * busy, waiting reads that touch end to end are sent as one request when a
 * slot frees, so many small adjacent reads become one large one.
 */
import type { Limiter } from './limiter.js';

/** One waiting read: `[start, end)` of the object into `into`. */
interface Waiting {
  readonly start: number;
  readonly end: number;
  readonly into: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Sends `[start, end)` and hands each chunk to `deliver` with its position in the range. */
export type Fetch = (start: number, end: number, deliver: (chunk: Uint8Array, at: number) => void, target: (at: number) => Uint8Array | undefined) => Promise<void>;

/** Largest request coalescing builds. */
const MAX_COALESCED = 32 * 1024 * 1024;

/** The requests in flight against one object. */
export class RangeQueue {
  readonly #fetch: Fetch;
  readonly #limiter: Limiter;
  #waiting: Waiting[] = [];

  constructor(fetch: Fetch, limiter: Limiter) {
    this.#fetch = fetch;
    this.#limiter = limiter;
  }

  /** Fills `into` with the object's bytes from `start` (its whole length must lie inside the object). */
  read(start: number, into: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ start, end: start + into.length, into, resolve, reject });
      // The batch is chosen when a slot frees, so reads queued meanwhile join it; a read an earlier batch took leaves nothing to do.
      void this.#limiter.run(async () => {
        if (this.#waiting.length > 0) await this.#run(this.#takeBatch());
      });
    });
  }

  /** The oldest waiting read and every other one that continues it end to end. */
  #takeBatch(): Waiting[] {
    const first = this.#waiting.shift() as Waiting;
    const batch = [first];
    let end = first.end;
    for (let grown = true; grown; ) {
      grown = false;
      const i = this.#waiting.findIndex((w) => w.start === end && w.end - first.start <= MAX_COALESCED);
      if (i >= 0) {
        const [next] = this.#waiting.splice(i, 1) as [Waiting];
        batch.push(next);
        end = next.end;
        grown = true;
      }
    }
    return batch;
  }

  async #run(batch: Waiting[]): Promise<void> {
    const start = (batch[0] as Waiting).start;
    const end = (batch[batch.length - 1] as Waiting).end;
    try {
      await this.#fetch(start, end, (chunk, at) => scatter(batch, start + at, chunk), (at) => destination(batch, start + at));
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}

/** Copies a chunk that starts at object offset `pos` into the reads of `batch` it overlaps. */
function scatter(batch: readonly Waiting[], pos: number, chunk: Uint8Array): void {
  const chunkEnd = pos + chunk.length;
  for (const w of batch) {
    const from = Math.max(pos, w.start);
    const to = Math.min(chunkEnd, w.end);
    if (from < to) w.into.set(chunk.subarray(from - pos, to - pos), from - w.start);
  }
}

/** The rest of the read of `batch` that object offset `pos` falls in, for the body to land in directly. */
function destination(batch: readonly Waiting[], pos: number): Uint8Array | undefined {
  for (const w of batch) if (pos >= w.start && pos < w.end) return w.into.subarray(pos - w.start);
  return undefined;
}
