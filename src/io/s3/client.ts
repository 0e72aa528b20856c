/**
 * S3 requests: addressing (path- or virtual-hosted style), signing,
 * bounded concurrency and retries with backoff (resets, timeouts, 408,
 * 429, 5xx; Retry-After honoured), answers turned into typed errors. The
 * HTTP exchange itself is transport.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { toAbortError } from '../../core/abort.js';
import { VdiskError } from '../../core/errors.js';
import type { NetworkOptions } from '../network-options.js';
import type { S3Config } from './config.js';
import { statusError, transportError } from './errors.js';
import { canonicalQuery, encodeKeyPath, sha256Hex, signRequest } from './sigv4.js';
import { send, TransportError, type HttpResponse } from './transport.js';
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

const ERROR_BODY = 64 * 1024;

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Retry-After in milliseconds (seconds or an HTTP date), at most a minute. */
function retryAfter(res: HttpResponse | undefined): number | undefined {
  const v = res?.headers['retry-after'];
  if (typeof v !== 'string') return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : undefined;
}

/** A counting semaphore: requests in flight per client. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Sends S3 requests for one object. */
export class S3Client {
  readonly config: S3Config;
  readonly location: S3Location;
  readonly #net: NetworkOptions;
  readonly #slots: Slots;

  constructor(config: S3Config, location: S3Location, network: NetworkOptions = {}) {
    this.config = config;
    this.location = location;
    this.#net = network;
    this.#slots = new Slots(Math.max(1, network.concurrency ?? 4));
  }

  /** Requests in flight at most. */
  get concurrency(): number {
    return Math.max(1, this.#net.concurrency ?? 4);
  }

  /** Origin and encoded path of the object: path-style for custom endpoints and bucket names with dots. */
  #address(): { origin: URL; path: string } {
    const { endpoint, pathStyle } = this.config;
    const { bucket, key } = this.location;
    const base = endpoint.pathname.replace(/\/+$/, '');
    if (pathStyle || bucket.includes('.')) return { origin: endpoint, path: `${base}/${encodeKeyPath(bucket)}/${encodeKeyPath(key)}` };
    return { origin: new URL(`${endpoint.protocol}//${bucket}.${endpoint.host}`), path: `${base}/${encodeKeyPath(key)}` };
  }

  async #headers(call: S3Call, origin: URL, path: string, query: string): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.#net.headers, ...call.headers };
    if (call.body !== undefined) headers['content-length'] = String(call.body.length);
    await this.#net.authorize?.({ url: `${origin.origin}${path}${query === '' ? '' : `?${query}`}`, method: call.method, headers });
    const creds = this.config.credentials;
    if (!creds) return headers;
    const payloadHash = sha256Hex(call.body ?? '');
    return signRequest({ method: call.method, host: origin.host, path, query: call.query ?? [], headers, payloadHash }, creds, this.config.region);
  }

  async #once(call: S3Call, signal: AbortSignal | undefined): Promise<HttpResponse> {
    const { origin, path } = this.#address();
    const query = canonicalQuery(call.query ?? []);
    const headers = await this.#headers(call, origin, path, query);
    return send({ method: call.method, origin, path: query === '' ? path : `${path}?${query}`, headers, body: call.body, timeoutMs: this.#net.timeoutMs ?? 30_000, maxBody: call.maxBody, signal });
  }

  /**
   * Sends `call`, retrying what may succeed later; a 2xx answer is
   * returned, anything else thrown as a typed error naming the object.
   */
  async request(call: S3Call): Promise<HttpResponse> {
    const signal = call.signal ?? this.#net.signal;
    const attempts = Math.max(1, this.#net.retries ?? 5);
    return this.#slots.run(async () => {
      for (let attempt = 1; ; attempt++) {
        let res: HttpResponse | undefined;
        try {
          res = await this.#once({ ...call, maxBody: Math.max(call.maxBody, ERROR_BODY) }, signal);
          if (res.status >= 200 && res.status < 300) return res;
          if (!retryable(res.status) || attempt >= attempts) throw statusError(call.what, this.location.name, res.status, res.body, attempt);
        } catch (err) {
          if (err instanceof VdiskError) throw err;
          if (!(err instanceof TransportError)) throw err;
          if (attempt >= attempts) throw transportError(call.what, this.location.name, err, attempt);
        }
        const delay = retryAfter(res) ?? Math.min(5000, 100 * 2 ** (attempt - 1));
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          throw toAbortError(signal?.reason);
        }
      }
    });
  }
}
