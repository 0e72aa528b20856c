/**
 * Batched reading of L2 tables for walks over whole L1 tables (check):
 * tables come back in the caller's order, but are fetched ahead of it,
 * runs of tables adjacent in the file in one request, several requests in
 * flight, into a few reused buffers. On sparse images the cost of such a
 * walk is one async round trip per table, not the bytes; keeping several
 * in flight overlaps them with the caller's work.
 */
import type { ByteStore } from '../../io/byte-store.js';

/** An L2 table to read: its L1 index and its (possibly unaligned) offset. */
export interface L2Ref {
  readonly index: number;
  readonly offset: number;
}

/** A table as read. `bytes` is valid (and may be changed) until the walk moves on. */
export interface L2Table extends L2Ref {
  readonly bytes: Uint8Array;
}

/** How a walk reads ahead. */
export interface L2ReadOptions {
  /**
   * Read ahead (default true): several requests in flight, adjacent tables
   * in one request. False reads each table alone, only when the walk asks
   * for it, for walks that write tables (or anything a table may overlap on
   * a damaged image) as they go.
   */
  readonly ahead?: boolean;
}

/** Requests in flight when reading ahead. */
const IN_FLIGHT = 8;
/** Largest coalesced request; tables larger than this are read one per request. */
const MAX_REQUEST = 1024 * 1024;

interface Request {
  readonly refs: L2Ref[];
  readonly buf: Uint8Array;
  readonly done: Promise<number>;
}

/**
 * Yields the tables of `refs` in order, reading `tableBytes` at each offset
 * (zeros past the end of the file, and for offsets too large to read, as
 * qemu's reads). `refs` is pulled lazily, a window ahead of the caller, so
 * a huge L1 table never becomes a huge list. A failed read throws when its
 * table's turn comes.
 */
export async function* readL2Tables(store: ByteStore, refs: Iterator<L2Ref>, tableBytes: number, options: L2ReadOptions = {}): AsyncGenerator<L2Table, void, undefined> {
  const ahead = options.ahead ?? true;
  const inFlight = ahead ? IN_FLIGHT : 1;
  const cap = ahead ? Math.max(tableBytes, Math.floor(MAX_REQUEST / tableBytes) * tableBytes) : tableBytes;
  const free: Uint8Array[] = [];
  const queue: Request[] = [];
  let held: L2Ref | undefined;
  let ended = false;

  const pull = (): L2Ref | undefined => {
    if (held) {
      const r = held;
      held = undefined;
      return r;
    }
    if (ended) return undefined;
    const r = refs.next();
    if (r.done) {
      ended = true;
      return undefined;
    }
    return r.value;
  };

  const issue = (): boolean => {
    const first = pull();
    if (!first) return false;
    const run = [first];
    // Only aligned, exactly adjacent tables share a request: a request never covers a byte twice.
    if (first.offset % tableBytes === 0) {
      while ((run.length + 1) * tableBytes <= cap) {
        const next = pull();
        if (!next) break;
        if (next.offset !== first.offset + run.length * tableBytes) {
          held = next;
          break;
        }
        run.push(next);
      }
    }
    const len = run.length * tableBytes;
    const buf = (free.pop() ?? new Uint8Array(cap)).subarray(0, len);
    let done: Promise<number>;
    if (first.offset <= Number.MAX_SAFE_INTEGER - len) {
      done = store.read(first.offset, buf);
      done.catch(() => undefined); // surfaced when its turn comes
    } else {
      buf.fill(0);
      done = Promise.resolve(0);
    }
    queue.push({ refs: run, buf, done });
    return true;
  };

  try {
    while (queue.length < inFlight && issue());
    for (let head = queue.shift(); head; head = queue.shift()) {
      await head.done;
      // Refill behind the head (which still counts) before handing it out, so reads overlap the caller's work.
      while (queue.length + 1 < inFlight && issue());
      for (let k = 0; k < head.refs.length; k++) {
        const ref = head.refs[k]!;
        yield { index: ref.index, offset: ref.offset, bytes: head.buf.subarray(k * tableBytes, (k + 1) * tableBytes) };
      }
      free.push(new Uint8Array(head.buf.buffer, 0, cap));
      if (queue.length === 0) issue();
    }
  } finally {
    // A caller that stops early (error, abort) must not leave reads running into dropped buffers.
    await Promise.allSettled(queue.map((r) => r.done));
  }
}

/** The L2 references of an L1 table (big-endian entries), as {@link readL2Tables} pulls them. */
export function* l1Refs(l1: DataView, entries: number, offsetOf: (hi: number, lo: number) => number): Generator<L2Ref, void, undefined> {
  for (let i = 0; i < entries; i++) {
    const hi = l1.getUint32(i * 8);
    const lo = l1.getUint32(i * 8 + 4);
    if (hi === 0 && lo === 0) continue;
    yield { index: i, offset: offsetOf(hi, lo) };
  }
}
