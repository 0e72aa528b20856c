/**
 * Shared by the forward readers: guest bytes as they arrive, turned into
 * the writes a forward image yields (all-zero runs left out, since what an
 * image does not write reads as zeros), and the reader that pulls a
 * stream of plain guest bytes in chunks.
 */
import { scanRun } from '../core/bytes.js';
import type { ForwardSource, GuestWrite } from './driver.js';

/** Zero runs shorter than this stay in the data write (a file system block). */
const ZERO_GRANULE = 4096;
/** Bytes pulled from a plain stream per write. */
export const FORWARD_CHUNK = 1024 * 1024;

/** The writes for `data` at guest `offset`: its data runs, zero runs left out. */
export function* dataWrites(offset: number, data: Uint8Array): Generator<GuestWrite> {
  for (let at = 0; at < data.length; ) {
    const run = scanRun(data.subarray(at), ZERO_GRANULE);
    if (!run.zero) yield { offset: offset + at, data: data.subarray(at, at + run.length) };
    at += run.length;
  }
}

/**
 * Guest bytes read straight from `source` into guest offsets from 0, in
 * chunks, until the stream ends or `limit` bytes were read; `hold` bytes
 * at the very end of the stream are kept back (a trailing footer) and
 * handed to `tail`. Returns the guest bytes read.
 */
export async function* plainWrites(source: ForwardSource, hold: number, tail: (bytes: Uint8Array) => void, counted: (n: number) => void): AsyncGenerator<GuestWrite> {
  let kept: Uint8Array = new Uint8Array(0);
  let offset = 0;
  for (;;) {
    const chunk = await source.readUpTo(FORWARD_CHUNK);
    if (chunk.length === 0) break;
    // The last `hold` bytes seen so far may be the footer: pass on everything before them.
    const all = kept.length === 0 ? chunk : concat(kept, chunk);
    const pass = Math.max(0, all.length - hold);
    if (pass > 0) {
      yield* dataWrites(offset, all.subarray(0, pass));
      offset += pass;
      counted(offset);
    }
    kept = all.slice(pass);
  }
  tail(kept);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** `source` with `prefix` (bytes already read from it) put back in front. */
export function withPrefix(prefix: Uint8Array, source: ForwardSource): ForwardSource {
  let kept = prefix;
  return {
    get position(): number {
      return source.position - kept.length;
    },
    async read(length: number): Promise<Uint8Array> {
      return take(length, (n) => source.read(n));
    },
    async readUpTo(length: number): Promise<Uint8Array> {
      return take(length, (n) => source.readUpTo(n));
    },
    async skip(length: number): Promise<void> {
      const k = Math.min(length, kept.length);
      kept = kept.subarray(k);
      if (length > k) await source.skip(length - k);
    },
  };
  async function take(length: number, more: (n: number) => Promise<Uint8Array>): Promise<Uint8Array> {
    if (kept.length === 0) return more(length);
    const k = Math.min(length, kept.length);
    const head = kept.subarray(0, k);
    kept = kept.subarray(k);
    return k === length ? head : concat(head, await more(length - k));
  }
}
