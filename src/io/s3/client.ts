/**
 * S3 requests: addressing (path- or virtual-hosted style), signing, and
 * answers turned into typed errors naming the object. Sending, retries,
 * the concurrency limit and the checks on ranged reads are the HTTP
 * store's (io/http/), shared.
 */
import type * as http from 'node:http';

import type { NetworkOptions } from '../network-options.js';
import { exchange, header, newAgent, readAll, TransientError } from '../http/exchange.js';
import { Limiter } from '../http/limiter.js';
import { fetchRange, type Deliver, type Pin } from '../http/ranged.js';
import { parseRetryAfter, retrying, transientStatus } from '../http/retry.js';
import type { S3Config } from './config.js';
import { statusError, transportError } from './errors.js';
import { canonicalQuery, encodeKeyPath, sha256Hex, signRequest } from './sigv4.js';
import type { S3Location } from './url.js';

/** One S3 operation. */
export interface S3Call {
  readonly method: string;
  readonly query?: readonly (readonly [string, string])[] | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly body?: Uint8Array | undefined;
  /** Most response body bytes accepted. */
  readonly maxBody: number;
  /** The failed step, for messages (`Could not open`). */
  readonly what: string;
  /** Abort signal overriding the client's (cleanup after an abort must still run). */
  readonly signal?: AbortSignal | undefined;
}

/** An S3 answer, its body read whole. */
export interface S3Response {
  /** Status code. */
  readonly status: number;
  /** Headers (names in lower case). */
  readonly headers: http.IncomingHttpHeaders;
  /** The body. */
  readonly body: Buffer;
}

/** What is signed and sent of a call. */
type S3Request = Pick<S3Call, 'method' | 'query' | 'headers' | 'body'>;

const ERROR_BODY = 64 * 1024;
const DEFAULT_CONCURRENCY = 4;
const DEFAULT_TIMEOUT_MS = 30_000;

/** A status worth another attempt (408, 429, 5xx), with the answer its final error is worded from. */
class BusyError extends TransientError {
  constructor(
    readonly status: number,
    readonly body: Buffer,
    retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}`, retryAfterMs);
  }
}

/** Sends S3 requests for one object. */
export class S3Client {
  readonly config: S3Config;
  readonly location: S3Location;
  /** Requests in flight at most. */
  readonly concurrency: number;
  readonly #net: NetworkOptions;
  readonly #limiter: Limiter;
  readonly #agent: http.Agent;

  constructor(config: S3Config, location: S3Location, network: NetworkOptions = {}) {
    this.config = config;
    this.location = location;
    this.#net = network;
    this.concurrency = Math.max(1, network.concurrency ?? DEFAULT_CONCURRENCY);
    this.#limiter = new Limiter(this.concurrency);
    this.#agent = newAgent(config.endpoint, this.concurrency);
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * Sends `call`, retrying what may succeed later; a 2xx answer is
   * returned, anything else thrown as a typed error naming the object.
   */
  request(call: S3Call): Promise<S3Response> {
    const signal = call.signal ?? this.#net.signal;
    return this.#retrying(call.what, signal, async (n) => {
      const res = await this.#send(call, signal);
      const status = res.statusCode ?? 0;
      const body = await readAll(res, Math.max(call.maxBody, ERROR_BODY), signal);
      if (status < 200 || status >= 300) throw await this.#statusError(res, call.what, n, body);
      return { status, headers: res.headers, body };
    });
  }

  /** Reads `[start, end)` of the version `etag` names (sent as If-Match) into `deliver`. */
  getRange(start: number, end: number, size: number, etag: string | undefined, deliver: Deliver): Promise<void> {
    const what = `Could not read bytes ${start}-${end - 1} of`;
    const signal = this.#net.signal;
    const pin: Pin = { etag, lastModified: undefined };
    return this.#retrying(what, signal, (n) =>
      fetchRange(
        {
          shown: this.location.name,
          size,
          pin,
          pinMode: 'if-match',
          signal,
          send: (headers) => this.#send({ method: 'GET', headers }, signal),
          statusError: (res) => this.#statusError(res, what, n),
        },
        start,
        end,
        deliver,
      ),
    );
  }

  /** Runs `attempt` in a slot under the shared retry policy; what fails is worded as S3 errors are. */
  #retrying<T>(what: string, signal: AbortSignal | undefined, attempt: (n: number) => Promise<T>): Promise<T> {
    const name = this.location.name;
    return this.#limiter.run(() =>
      retrying({ retries: this.#net.retries, signal }, attempt, (err, n) =>
        err instanceof BusyError ? statusError(what, name, err.status, err.body, n) : transportError(what, name, err, n),
      ),
    );
  }

  /** The error for a status other than success: BusyError when worth retrying, else typed. */
  async #statusError(res: http.IncomingMessage, what: string, attempts: number, read?: Buffer): Promise<Error> {
    const body = read ?? (await readAll(res, ERROR_BODY, this.#net.signal).catch(() => Buffer.alloc(0)));
    const status = res.statusCode ?? 0;
    if (transientStatus(status)) return new BusyError(status, body, parseRetryAfter(header(res, 'retry-after')));
    return statusError(what, this.location.name, status, body, attempts);
  }

  /** Origin and encoded path of the object: path-style for custom endpoints and bucket names with dots. */
  #address(): { origin: URL; path: string } {
    const { endpoint, pathStyle } = this.config;
    const { bucket, key } = this.location;
    const base = endpoint.pathname.replace(/\/+$/, '');
    if (pathStyle || bucket.includes('.')) return { origin: endpoint, path: `${base}/${encodeKeyPath(bucket)}/${encodeKeyPath(key)}` };
    return { origin: new URL(`${endpoint.protocol}//${bucket}.${endpoint.host}`), path: `${base}/${encodeKeyPath(key)}` };
  }

  async #headers(call: S3Request, origin: URL, path: string, query: string): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.#net.headers, ...call.headers };
    if (call.body !== undefined) headers['content-length'] = String(call.body.length);
    await this.#net.authorize?.({ url: `${origin.origin}${path}${query === '' ? '' : `?${query}`}`, method: call.method, headers });
    const creds = this.config.credentials;
    if (!creds) return headers;
    const payloadHash = sha256Hex(call.body ?? '');
    return signRequest({ method: call.method, host: origin.host, path, query: call.query ?? [], headers, payloadHash }, creds, this.config.region);
  }

  /** Signs and sends `call` once; resolves at the response headers. */
  async #send(call: S3Request, signal: AbortSignal | undefined): Promise<http.IncomingMessage> {
    const { origin, path } = this.#address();
    const query = canonicalQuery(call.query ?? []);
    const headers = await this.#headers(call, origin, path, query);
    const timeoutMs = this.#net.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return exchange(origin, query === '' ? path : `${path}?${query}`, { method: call.method, headers, body: call.body, agent: this.#agent, timeoutMs, signal });
  }
}
