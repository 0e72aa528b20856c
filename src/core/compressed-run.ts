/**
 * Reading a run of compressed units (qcow2 clusters, VMDK grains) the way
 * they lie in the file: units written one after another are fetched with
 * one read per span instead of one per unit, and each span is decoded as
 * one task on the codec pool, so a 2 MiB request costs a couple of reads
 * and messages rather than a read and a thread hand-off per 64 KiB.
 */
import type { CodecName, DecodePiece, DecodeResult } from './codec-kernels.js';
import { nativeCodecCan, runNativeCodec } from './codec-native.js';
import { runCodec } from './codec-pool.js';
import { sharedPageBuffer, wholePageBuffer } from './page-buffer.js';

/** Where spans are read from (a ByteStore; core sits below io/). */
export interface SpanSource {
  read(offset: number, into: Uint8Array): Promise<unknown>;
}

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
 * Span buffers in shared memory, recycled: a worker reads a span where the
 * read put it (no transfer, no copy), and no fresh multi-megabyte buffer
 * waits for a worker's garbage collector per request.
 */
const free: Uint8Array[] = [];
/** Buffers kept (convert has at most `-m` requests in flight, each a span or two). */
const KEEP = 8;
/** Sizes are whole steps, so that a buffer serves the next span of about the same size. */
const STEP = 512 * 1024;

function takeBuffer(n: number): Uint8Array {
  const at = free.findIndex((b) => b.length >= n);
  const buf = at >= 0 ? (free.splice(at, 1)[0] as Uint8Array) : sharedPageBuffer(Math.ceil(n / STEP) * STEP);
  return buf.subarray(0, n);
}

function giveBuffer(b: Uint8Array): void {
  if (free.length < KEEP) free.push(wholePageBuffer(b));
}

/** Reads `span` from `store` into a recycled buffer for the duration of `use`. */
export async function withSpan<T>(store: SpanSource, span: { start: number; end: number }, use: (input: Uint8Array) => Promise<T>): Promise<T> {
  const input = takeBuffer(span.end - span.start);
  try {
    await store.read(span.start, input);
    return await use(input);
  } finally {
    giveBuffer(input);
  }
}

/**
 * Decodes the units of `input` into `out`. Shared memory (a span buffer,
 * convert's request buffers) is read and written in place by the worker;
 * other input is copied to the worker, other output copied back once.
 */
export async function decodeInto(codec: CodecName, unit: number, input: Uint8Array, pieces: readonly DecodePiece[], out: Uint8Array): Promise<DecodeResult> {
  // The native module reads and writes any buffer in place: nothing to copy.
  const direct = { op: 'decode', codec, unit, input, pieces, out, outLength: out.length } as const;
  if (nativeCodecCan(direct)) return (await runNativeCodec(direct)) as DecodeResult;
  const shared = (b: Uint8Array): boolean => typeof SharedArrayBuffer !== 'undefined' && b.buffer instanceof SharedArrayBuffer;
  const sendable = shared(input) ? input : new Uint8Array(input); // a copy of its own (Buffer#slice would share)
  const r = (await runCodec(
    { op: 'decode', codec, unit, input: sendable, pieces, out: shared(out) ? out : undefined, outLength: out.length },
    shared(sendable) ? [] : [sendable.buffer as ArrayBuffer],
  )) as DecodeResult;
  if (!shared(out) && r.out && !r.failed) out.set(r.out.subarray(0, out.length));
  return r;
}
