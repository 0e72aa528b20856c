/**
 * The ranged GET both network object stores (HTTP(S) and S3) read with:
 * pinned to the version first seen (`If-Range`, or S3's `If-Match`), and
 * every answer checked (status, Content-Range, Content-Length, validators,
 * body length) so a changed object is a clear error, never mixed data.
 * Retries are the caller's (retry.ts): a short body is a TransientError.
 */
import { IoError, UnsupportedError } from '../../core/errors.js';
import { discard, header, readBody, TransientError, type HttpResponse } from './exchange.js';
import type { Target } from './raw-http.js';

/** Receives the bytes of a range: `chunk` starts `at` bytes into the range. */
export type Deliver = (chunk: Buffer, at: number) => void;

/** The version of the object every read must come from. */
export interface Pin {
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

/**
 * How reads name the pinned version: `if-range` (a changed object comes
 * back whole, as 200) or `if-match` (S3: a changed object is refused, 412).
 */
export type PinMode = 'if-range' | 'if-match';

/** One object read by ranges. */
export interface RangedObject<R extends HttpResponse = HttpResponse> {
  /** The name messages show (query string redacted). */
  readonly shown: string;
  /** The object's size, as its first answer gave it. */
  readonly size: number;
  readonly pin: Pin;
  readonly pinMode: PinMode;
  readonly signal: AbortSignal | undefined;
  /** Sends a GET with these headers (the store adds its own); resolves at the response headers. */
  send(headers: Record<string, string>): Promise<R>;
  /** The error for a status that is neither a range nor a changed object: a TransientError when worth retrying. */
  statusError(res: R, start: number, end: number): Error | Promise<Error>;
}

/** The validators of `res`, to pin reads to. */
export function pinOf(res: HttpResponse): Pin {
  return { etag: header(res, 'etag'), lastModified: header(res, 'last-modified') };
}

/** `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`), or undefined. */
export function parseContentRange(value: string | undefined): { first: number; last: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? '');
  if (!m) return undefined;
  return { first: Number(m[1]), last: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The object changed between two reads: never mix its versions. */
export function changedError(shown: string, start: number, end: number, why: string): IoError {
  return new IoError(`'${shown}' changed while it was read (${why}; bytes ${start}-${end - 1})`, { file: shown, offset: start, data: { start, end } });
}

/** The server answers ranged GETs with the whole object. */
export function noRangesError(shown: string): UnsupportedError {
  return new UnsupportedError(`Server does not support HTTP range requests: '${shown}'`, { file: shown });
}

/**
 * One attempt at `[start, end)` of `obj`, its bytes into `target`'s buffers
 * when given (the raw client reads into them) else to `deliver`; bytes of a
 * failed attempt are delivered again by the next.
 */
export async function fetchRange<R extends HttpResponse>(obj: RangedObject<R>, start: number, end: number, deliver: Deliver, target?: Target): Promise<void> {
  const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
  const pinned = pinValue(obj.pin, obj.pinMode);
  if (pinned !== undefined) headers[obj.pinMode] = pinned;
  const res = await obj.send(headers);
  const status = res.statusCode ?? 0;
  if (status === 412 || status === 416) {
    discard(res);
    throw changedError(obj.shown, start, end, `HTTP ${status}`);
  }
  if (status !== 200 && status !== 206) throw await obj.statusError(res, start, end);
  const refused = status === 206 ? checkPart(obj, res, start, end) : checkWhole(obj, res, start, end, pinned !== undefined);
  if (refused !== undefined) {
    discard(res);
    throw refused;
  }
  const got = await readBody(res, end - start, deliver, obj.signal, target);
  if (got !== end - start) throw new TransientError(`short body: ${got} of ${end - start} bytes`);
}

/** A 206 that is not exactly the pinned object's `[start, end)`: the error, else undefined. */
function checkPart(obj: RangedObject<HttpResponse>, res: HttpResponse, start: number, end: number): IoError | undefined {
  const why = pinMismatch(obj.pin, res);
  if (why !== undefined) return changedError(obj.shown, start, end, why);
  const value = header(res, 'content-range') ?? '';
  const range = parseContentRange(value);
  const length = header(res, 'content-length');
  let bad: string | undefined;
  if (!range || range.first !== start || range.last !== end - 1) bad = `asked for bytes ${start}-${end - 1}, got Content-Range '${value}'`;
  else if (range.total !== undefined && range.total !== obj.size) return changedError(obj.shown, start, end, `its size went from ${obj.size} to ${range.total} bytes`);
  else if (length !== undefined && Number(length) !== end - start) bad = `Content-Length ${length} for ${end - start} bytes`;
  return bad === undefined ? undefined : new IoError(`Could not read '${obj.shown}' bytes ${start}-${end - 1}: ${bad}`, { file: obj.shown, offset: start });
}

/**
 * A 200 where a range was asked for: the object changed (If-Range found
 * another version); else the same version whole, which is the range when
 * the range was the whole object, and otherwise says the server ignores
 * Range.
 */
function checkWhole(obj: RangedObject<HttpResponse>, res: HttpResponse, start: number, end: number, sentPin: boolean): Error | undefined {
  const why = pinMismatch(obj.pin, res);
  if (why !== undefined) return changedError(obj.shown, start, end, why);
  const { etag, lastModified } = obj.pin;
  const same = etag !== undefined ? header(res, 'etag') === etag : lastModified !== undefined && header(res, 'last-modified') === lastModified;
  if (sentPin && !same) return changedError(obj.shown, start, end, 'the server sent a different version');
  const length = header(res, 'content-length');
  if (start === 0 && end === obj.size && (length === undefined || Number(length) === end)) return undefined;
  return noRangesError(obj.shown);
}

/** Why `res` is not the pinned version, or undefined when it is (or cannot tell). */
function pinMismatch(pin: Pin, res: HttpResponse): string | undefined {
  const etag = header(res, 'etag');
  if (pin.etag !== undefined && etag !== undefined && weak(etag) !== weak(pin.etag)) return `ETag ${pin.etag} became ${etag}`;
  const modified = header(res, 'last-modified');
  if (pin.lastModified !== undefined && modified !== undefined && modified !== pin.lastModified) return `Last-Modified ${pin.lastModified} became ${modified}`;
  return undefined;
}

/**
 * The validator sent with each read: If-Match takes any ETag; If-Range a
 * strong ETag or a date (a weak ETag cannot be used there: the responses
 * are still compared).
 */
function pinValue(pin: Pin, mode: PinMode): string | undefined {
  if (mode === 'if-match') return pin.etag;
  if (pin.etag !== undefined && !pin.etag.startsWith('W/')) return pin.etag;
  return pin.lastModified;
}

/** An ETag without its weakness mark, for the weak comparison responses are checked with. */
function weak(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}
