/**
 * The requests of one HTTP(S) object: its size (HEAD, or a ranged GET when
 * HEAD is refused) and ranged GETs pinned to the version first seen, each
 * checked (status, Content-Range, Content-Length, validators) and retried
 * with backoff when the failure is transient.
 */
import type * as http from 'node:http';
import { IoError, NotFoundError, PermissionError } from '../../core/errors.js';
import type { NetworkOptions } from '../network-options.js';
import { discard, exchange, header, newAgent, readBody, TransientError, type HttpResponse } from './exchange.js';
import { RawPool, type Target } from './raw-http.js';
import { fetchRange, noRangesError, parseContentRange, pinOf, type Deliver, type Pin, type RangedObject } from './ranged.js';
import { parseRetryAfter, retrying, transientStatus } from './retry.js';
import type { HttpTarget } from './url.js';

export type { Deliver } from './ranged.js';

/** What opening learnt: the size, and the first bytes when the size came from a ranged GET. */
export interface ProbeResult {
  readonly size: number;
  readonly head: Buffer | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** One object on one server, with its pooled connections. */
export class HttpClient {
  readonly #target: HttpTarget;
  readonly #agent: http.Agent;
  readonly #options: NetworkOptions;
  /** Plain-HTTP ranged GETs go through the raw client (bodies straight into the reader's buffers). */
  readonly #raw: RawPool | undefined;
  #pin: Pin = { etag: undefined, lastModified: undefined };
  #size = 0;

  constructor(target: HttpTarget, options: NetworkOptions, sockets: number) {
    this.#target = target;
    this.#options = options;
    this.#agent = newAgent(target.url, sockets);
    this.#raw = target.url.protocol === 'http:' ? new RawPool(target.url, options.timeoutMs ?? DEFAULT_TIMEOUT_MS) : undefined;
  }

  /** The URL as messages show it. */
  get shown(): string {
    return this.#target.shown;
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
    this.#raw?.close();
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

  /**
   * Reads `[start, end)` into `target`'s buffers (or `deliver`), retrying
   * transient failures; bytes of a failed attempt are delivered again.
   */
  async getRange(start: number, end: number, deliver: Deliver, target?: Target): Promise<void> {
    const obj: RangedObject = {
      shown: this.shown,
      size: this.#size,
      pin: this.#pin,
      pinMode: 'if-range',
      signal: this.#options.signal,
      send: (headers) => this.#send('GET', headers, this.#raw),
      statusError: (res, from, to) => this.#statusError(res, from, to),
    };
    await this.#attempts('GET', [start, end], () => fetchRange(obj, start, end, deliver, target));
  }

  /** Runs `attempt` under the retry policy, wording what fails as qemu's curl driver would. */
  #attempts<T>(method: string, range: readonly [number, number] | undefined, attempt: () => Promise<T>): Promise<T> {
    // Opening is worded as qemu's curl driver words it; the open's caller adds "Could not open 'URL': ".
    const what = range ? `Could not read '${this.shown}' bytes ${range[0]}-${range[1] - 1}: ` : 'Error opening file: ';
    const details = { file: this.shown, offset: range?.[0], data: range ? { start: range[0], end: range[1] } : undefined };
    return retrying(this.#options, attempt, (err, n, exhausted) => {
      const tail = exhausted ? ` (${method}, gave up after ${n} attempts)` : '';
      return new IoError(`${what}${err.message}${tail}`, { ...details, cause: err });
    });
  }

  /** The request's headers (the caller's, then the auth hook's say), sent (on `raw` when given); resolves at the response headers. */
  async #send(method: 'GET' | 'HEAD', extra: Record<string, string>): Promise<http.IncomingMessage>;
  async #send(method: 'GET' | 'HEAD', extra: Record<string, string>, raw: RawPool | undefined): Promise<HttpResponse>;
  async #send(method: 'GET' | 'HEAD', extra: Record<string, string>, raw?: RawPool): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...lowerKeys(this.#options.headers ?? {}), 'accept-encoding': 'identity', ...extra };
    if (this.#target.basicAuth !== undefined && headers['authorization'] === undefined) headers['authorization'] = this.#target.basicAuth;
    await this.#options.authorize?.({ url: this.#target.url.href, method, headers });
    const { url } = this.#target;
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (raw) return raw.request(method, url.pathname + url.search, headers, this.#options.signal);
    return exchange(url, url.pathname + url.search, { method, headers, agent: this.#agent, timeoutMs, signal: this.#options.signal });
  }

  /** HEAD: the size, or undefined when the server refuses HEAD or leaves the size out. */
  async #head(): Promise<number | undefined> {
    const res = await this.#send('HEAD', {});
    res.resume();
    const status = res.statusCode ?? 0;
    if (status === 405 || status === 403 || status === 501) return undefined;
    if (status !== 200) throw this.#statusError(res, 0, 0);
    if (/^\s*none\s*$/i.test(header(res, 'accept-ranges') ?? '')) throw noRangesError(this.shown);
    const length = header(res, 'content-length');
    if (length === undefined || !/^\d+$/.test(length)) return undefined;
    this.#pin = pinOf(res);
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
      this.#pin = pinOf(res);
      return (this.#size = Number(total));
    }
    if (status === 200) {
      discard(res);
      throw noRangesError(this.shown);
    }
    if (status !== 206) throw this.#statusError(res, 0, 0);
    const range = parseContentRange(header(res, 'content-range'));
    const expect = range?.total === undefined ? -1 : Math.min(want, range.total);
    if (!range || range.total === undefined || range.first !== 0 || range.last !== expect - 1) {
      discard(res);
      throw new IoError(`'${this.shown}': bad Content-Range '${header(res, 'content-range') ?? ''}' for bytes 0-${want - 1}`, { file: this.shown });
    }
    this.#pin = pinOf(res);
    this.#size = range.total;
    const body = Buffer.alloc(expect);
    const got = await readBody(res, expect, (chunk, at) => chunk.copy(body, at), this.#options.signal);
    if (got !== expect) throw new TransientError(`short body: ${got} of ${expect} bytes`);
    keep(body);
    return this.#size;
  }

  /** A status that is not success: transient (408/429/5xx) or final, typed as a file error would be. */
  #statusError(res: HttpResponse, start: number, end: number): Error {
    discard(res);
    const status = res.statusCode ?? 0;
    const text = `The requested URL returned error: ${status}`;
    if (transientStatus(status)) return new TransientError(text, parseRetryAfter(header(res, 'retry-after')));
    const details = { file: this.shown, offset: end > start ? start : undefined, data: { status } };
    const message = end > start ? `Could not read '${this.shown}' bytes ${start}-${end - 1}: ${text}` : `Error opening file: ${text}`;
    if (status === 404 || status === 410) return new NotFoundError(message, details);
    if (status === 401 || status === 403) return new PermissionError(message, details);
    return new IoError(message, details);
  }
}

function lowerKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}
