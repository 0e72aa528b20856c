/**
 * Reading a run of compressed units (qcow2 clusters, VMDK grains) the way
 * they lie in the file: units written one after another are fetched with
 * one read per span instead of one per unit, and each span is decoded as
 * one task on the codec pool, so a 2 MiB request costs a couple of reads
 * and messages rather than a read and a thread hand-off per 64 KiB.
 */
import type { CodecName, DecodePiece, DecodeResult } from './codec-kernels.js';
import { runCodec } from './codec-pool.js';

/** A compressed unit where it lies in the file. */
export interface HostRange {
  readonly hostOffset: number;
  readonly hostLength: number;
}

/** Units whose bytes lie close together, read as one span `[start, end)`. */
export interface Span<T extends HostRange> {
  readonly start: number;
  readonly end: number;
  readonly units: T[];
}

/** Largest span read at once (bounds the input a run holds in memory). */
const MAX_SPAN = 4 * 1024 * 1024;

/**
 * Groups units, in order, into spans of nearby host bytes: a unit joins the
 * current span when it starts inside it or at most `gap` bytes past it and
 * the span stays under MAX_SPAN; anything else (a unit stored earlier in
 * the file, far away) starts a new span.
 */
export function groupSpans<T extends HostRange>(units: readonly T[], gap: number): Span<T>[] {
  const out: { start: number; end: number; units: T[] }[] = [];
  let cur: { start: number; end: number; units: T[] } | undefined;
  for (const u of units) {
    const end = u.hostOffset + u.hostLength;
    if (cur && u.hostOffset >= cur.start && u.hostOffset <= cur.end + gap && Math.max(cur.end, end) - cur.start <= MAX_SPAN) {
      cur.end = Math.max(cur.end, end);
      cur.units.push(u);
      continue;
    }
    cur = { start: u.hostOffset, end, units: [u] };
    out.push(cur);
  }
  return out;
}

/**
 * Decodes the units of `input` (a span read for this call: it is handed to
 * the pool and must not be used afterwards) into `out`. Shared memory is
 * written in place by the worker; anything else gets one copy of the
 * decoded bytes.
 */
export async function decodeInto(codec: CodecName, unit: number, input: Uint8Array, pieces: readonly DecodePiece[], out: Uint8Array): Promise<DecodeResult> {
  const shared = typeof SharedArrayBuffer !== 'undefined' && out.buffer instanceof SharedArrayBuffer;
  const owned = input.buffer instanceof ArrayBuffer && input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : input.slice();
  const r = (await runCodec(
    { op: 'decode', codec, unit, input: owned, pieces, out: shared ? out : undefined, outLength: out.length },
    [owned.buffer as ArrayBuffer],
  )) as DecodeResult;
  if (!shared && r.out && !r.failed) out.set(r.out.subarray(0, out.length));
  return r;
}
