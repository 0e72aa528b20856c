/**
 * The requests of one HTTP(S) object: its size (HEAD, or a ranged GET when
 * HEAD is refused) and ranged GETs pinned to the version first seen, each
 * checked (status, Content-Range, Content-Length, validators) and retried
 * with backoff when the failure is transient.
 */
import type * as http from 'node:http';
import { IoError, NotFoundError, PermissionError, UnsupportedError, VdiskError } from '../../core/errors.js';
import type { NetworkOptions } from '../network-options.js';
import { classify, discard, exchange, newAgent, readBody, TransientError } from './exchange.js';
import { backoffMs, parseRetryAfter, sleep } from './retry.js';
import type { HttpTarget } from './url.js';

/** Receives the bytes of a range: `chunk` starts `at` bytes into the range. */
export type Deliver = (chunk: Buffer, at: number) => void;

/** The version of the object every read must come from. */
interface Pin {
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

/** What opening learnt: the size, and the first bytes when the size came from a ranged GET. */
export interface ProbeResult {
  readonly size: number;
  readonly head: Buffer | undefined;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_TIMEOUT_MS = 30_000;

/** The object changed between two reads: never mix its versions. */
function changedError(shown: string, start: number, end: number, why: string): IoError {
  return new IoError(`'${shown}' changed while it was read (${why}; bytes ${start}-${end - 1})`, { file: shown, offset: start, data: { start, end } });
}

/** One object on one server, with its pooled connections. */
export class HttpClient {
  readonly #target: HttpTarget;
  readonly #agent: http.Agent;
  readonly #options: NetworkOptions;
  #pin: Pin = { etag: undefined, lastModified: undefined };
  #size = 0;

  constructor(target: HttpTarget, options: NetworkOptions, sockets: number) {
    this.#target = target;
    this.#options = options;
    this.#agent = newAgent(target.url, sockets);
  }

  /** The URL as messages show it. */
  get shown(): string {
    return this.#target.shown;
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * Finds the size and pins the version: HEAD, or when the server refuses
   * HEAD (405/403/501, presigned URLs signed for GET only) or does not say,
   * a GET of the first `headBytes`.
   */
  async probe(headBytes: number): Promise<ProbeResult> {
    const head = await this.#attempts('HEAD', undefined, () => this.#head());
    if (head !== undefined) return { size: head, head: undefined };
    let body: Buffer | undefined;
    const size = await this.#attempts('GET', undefined, async () => {
      const res = await this.#send('GET', { range: `bytes=0-${headBytes - 1}` });
      return this.#firstRange(res, headBytes, (b) => (body = b));
    });
    return { size, head: body };
  }

  /** Reads `[start, end)` into `deliver`, retrying transient failures; bytes of a failed attempt are delivered again. */
  async getRange(start: number, end: number, deliver: Deliver): Promise<void> {
    await this.#attempts('GET', [start, end], async () => {
      const headers: Record<string, string> = { range: `bytes=${start}-${end - 1}` };
      const ifRange = this.#ifRange();
      if (ifRange !== undefined) headers['if-range'] = ifRange;
      const res = await this.#send('GET', headers);
      this.#checkRange(res, start, end, ifRange !== undefined);
      const got = await readBody(res, end - start, deliver, this.#options.signal);
      if (got !== end - start) throw new TransientError(`short body: ${got} of ${end - start} bytes`);
    });
  }

  /** Runs `attempt` until it succeeds, fails for good, or the attempts run out. */
  async #attempts<T>(method: string, range: readonly [number, number] | undefined, attempt: () => Promise<T>): Promise<T> {
    const limit = Math.max(1, this.#options.retries ?? DEFAULT_RETRIES);
    // Opening is worded as qemu's curl driver words it; the open's caller adds "Could not open 'URL': ".
    const what = range ? `Could not read '${this.shown}' bytes ${range[0]}-${range[1] - 1}: ` : 'Error opening file: ';
    const details = { file: this.shown, offset: range?.[0], data: range ? { start: range[0], end: range[1] } : undefined };
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (raw) {
        const err = classify(raw, this.#options.signal);
        if (err instanceof VdiskError) throw err;
        if (!(err instanceof TransientError)) throw new IoError(`${what}${err.message}`, { ...details, cause: err });
        if (n >= limit) throw new IoError(`${what}${err.message} (${method}, gave up after ${n} attempts)`, { ...details, cause: err });
        await sleep(backoffMs(n, err.retryAfterMs), this.#options.signal);
      }
    }
  }

  /** The request's headers (the caller's, then the auth hook's say), sent; resolves at the response headers. */
  async #send(method: 'GET' | 'HEAD', extra: Record<string, string>): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...lowerKeys(this.#options.headers ?? {}), 'accept-encoding': 'identity', ...extra };
    if (this.#target.basicAuth !== undefined && headers['authorization'] === undefined) headers['authorization'] = this.#target.basicAuth;
    await this.#options.authorize?.({ url: this.#target.url.href, method, headers });
    return exchange(this.#target.url, { method, headers, agent: this.#agent, timeoutMs: this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: this.#options.signal });
  }

  /** HEAD: the size, or undefined when the server refuses HEAD or leaves the size out. */
  async #head(): Promise<number | undefined> {
    const res = await this.#send('HEAD', {});
    res.resume();
    const status = res.statusCode ?? 0;
    if (status === 405 || status === 403 || status === 501) return undefined;
    if (status !== 200) throw this.#statusError(res, 0, 0);
    if (/^\s*none\s*$/i.test(header(res, 'accept-ranges') ?? '')) throw this.#noRanges();
    const length = header(res, 'content-length');
    if (length === undefined || !/^\d+$/.test(length)) return undefined;
    this.#pinTo(res);
    this.#size = Number(length);
    return this.#size;
  }

  /** The size from the answer to the first ranged GET, whose body goes to `keep`. */
  async #firstRange(res: http.IncomingMessage, want: number, keep: (b: Buffer) => void): Promise<number> {
    const status = res.statusCode ?? 0;
    if (status === 416) {
      // An empty object has no byte 0: the answer names the size alone.
      discard(res);
      const total = /^bytes \*\/(\d+)$/.exec(header(res, 'content-range') ?? '')?.[1];
      if (total === undefined) throw new IoError(`'${this.shown}': range refused without a size (HTTP 416)`, { file: this.shown });
      this.#pinTo(res);
      return (this.#size = Number(total));
    }
    if (status === 200) {
      discard(res);
      throw this.#noRanges();
    }
    if (status !== 206) throw this.#statusError(res, 0, 0);
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header(res, 'content-range') ?? '');
    if (!m || Number(m[1]) !== 0) {
      discard(res);
      throw new IoError(`'${this.shown}': bad Content-Range '${header(res, 'content-range') ?? ''}' for bytes 0-${want - 1}`, { file: this.shown });
    }
    this.#pinTo(res);
    this.#size = Number(m[3]);
    const expect = Math.min(want, this.#size);
    if (Number(m[2]) !== expect - 1) {
      discard(res);
      throw new IoError(`'${this.shown}': bad Content-Range '${header(res, 'content-range') ?? ''}' for bytes 0-${want - 1}`, { file: this.shown });
    }
    const body = Buffer.alloc(expect);
    const got = await readBody(res, expect, (chunk, at) => chunk.copy(body, at), this.#options.signal);
    if (got !== expect) throw new TransientError(`short body: ${got} of ${expect} bytes`);
    keep(body);
    return this.#size;
  }

  /** Refuses a response that is not exactly the pinned object's `[start, end)`. */
  #checkRange(res: http.IncomingMessage, start: number, end: number, sentIfRange: boolean): void {
    const status = res.statusCode ?? 0;
    if (status === 206) {
      const why = this.#pinMismatch(res);
      const range = header(res, 'content-range') ?? '';
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
      const length = header(res, 'content-length');
      let bad: string | undefined;
      if (why !== undefined) bad = why;
      else if (!m || Number(m[1]) !== start || Number(m[2]) !== end - 1) bad = `asked for bytes ${start}-${end - 1}, got Content-Range '${range}'`;
      else if (m[3] !== '*' && Number(m[3]) !== this.#size) bad = `its size went from ${this.#size} to ${m[3]} bytes`;
      else if (length !== undefined && Number(length) !== end - start) bad = `Content-Length ${length} for ${end - start} bytes`;
      if (bad === undefined) return;
      discard(res);
      if (why !== undefined || (m && m[3] !== '*' && Number(m[3]) !== this.#size)) throw changedError(this.shown, start, end, bad);
      throw new IoError(`Could not read '${this.shown}' bytes ${start}-${end - 1}: ${bad}`, { file: this.shown, offset: start });
    }
    discard(res);
    // The whole object where a range was asked for: If-Range found another version (or the server ignores ranges).
    if (status === 200) throw this.#wholeObject(res, sentIfRange, start, end);
    if (status === 412 || status === 416) throw changedError(this.shown, start, end, `HTTP ${status}`);
    throw this.#statusError(res, start, end);
  }

  /**
   * A 200 where a range was asked for: the object changed (If-Range found
   * another version), or the server ignores Range (the same version again).
   */
  #wholeObject(res: http.IncomingMessage, sentIfRange: boolean, start: number, end: number): VdiskError {
    const why = this.#pinMismatch(res);
    if (why !== undefined) return changedError(this.shown, start, end, why);
    const same = this.#pin.etag !== undefined ? header(res, 'etag') === this.#pin.etag : this.#pin.lastModified !== undefined && header(res, 'last-modified') === this.#pin.lastModified;
    return sentIfRange && !same ? changedError(this.shown, start, end, 'the server sent a different version') : this.#noRanges();
  }

  /** Why `res` is not the pinned version, or undefined when it is (or cannot tell). */
  #pinMismatch(res: http.IncomingMessage): string | undefined {
    const etag = header(res, 'etag');
    if (this.#pin.etag !== undefined && etag !== undefined && weak(etag) !== weak(this.#pin.etag)) return `ETag ${this.#pin.etag} became ${etag}`;
    const modified = header(res, 'last-modified');
    if (this.#pin.lastModified !== undefined && modified !== undefined && modified !== this.#pin.lastModified) return `Last-Modified ${this.#pin.lastModified} became ${modified}`;
    return undefined;
  }

  /** If-Range takes a strong ETag or a date; a weak ETag cannot be used there (the responses are still compared). */
  #ifRange(): string | undefined {
    const etag = this.#pin.etag;
    if (etag !== undefined && !etag.startsWith('W/')) return etag;
    return this.#pin.lastModified;
  }

  #pinTo(res: http.IncomingMessage): void {
    this.#pin = { etag: header(res, 'etag'), lastModified: header(res, 'last-modified') };
  }

  #noRanges(): UnsupportedError {
    return new UnsupportedError(`Server does not support HTTP range requests: '${this.shown}'`, { file: this.shown });
  }

  /** A status that is not success: transient (408/429/5xx) or final, typed as a file error would be. */
  #statusError(res: http.IncomingMessage, start: number, end: number): Error {
    discard(res);
    const status = res.statusCode ?? 0;
    const text = `The requested URL returned error: ${status}`;
    if (status === 408 || status === 429 || status >= 500) return new TransientError(text, parseRetryAfter(header(res, 'retry-after')));
    const details = { file: this.shown, offset: end > start ? start : undefined, data: { status } };
    const message = end > start ? `Could not read '${this.shown}' bytes ${start}-${end - 1}: ${text}` : `Error opening file: ${text}`;
    if (status === 404 || status === 410) return new NotFoundError(message, details);
    if (status === 401 || status === 403) return new PermissionError(message, details);
    return new IoError(message, details);
  }
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An ETag without its weakness mark, for the weak comparison responses are checked with. */
function weak(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

function lowerKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}
