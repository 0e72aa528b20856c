/**
 * The one HTTP transport of the network stores (HTTP(S) sources and S3):
 * a request over node:http(s) keep-alive connections with an idle timeout
 * and an abort signal, its response headers, and its body delivered chunk
 * by chunk or read whole. No retries here; failures the caller may retry
 * come back as {@link TransientError}.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { toAbortError } from '../../core/abort.js';
import type { RawResponse, Target } from './raw-http.js';

/** A response from node:http or from the raw client of bulk reads. */
export type HttpResponse = http.IncomingMessage | RawResponse;

/** A failure worth another attempt: a reset, a timeout, a short body, 408/429/5xx. */
export class TransientError extends Error {
  /** Milliseconds the server asked to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number, options?: ErrorOptions) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** What a request needs besides where it goes. */
export interface ExchangeRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The request body (its `content-length` header is the caller's). */
  readonly body?: Uint8Array | undefined;
  readonly agent: http.Agent;
  /** Socket idle time before the attempt is abandoned as a timeout. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Keep-alive connections for one store, at most `sockets` open at once. */
export function newAgent(url: URL, sockets: number): http.Agent {
  const options = { keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

// Network errors that say nothing about the object: another attempt may well succeed.
const RETRYABLE = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * Sends the request to `path` (encoded as sent, query included) on
 * `origin`'s host and resolves with the response once its headers are in.
 */
export function exchange(origin: URL, path: string, req: ExchangeRequest): Promise<http.IncomingMessage> {
  const mod = origin.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) {
      reject(toAbortError(req.signal.reason));
      return;
    }
    const r = mod.request({
      protocol: origin.protocol,
      hostname: origin.hostname.replace(/^\[|\]$/g, ''),
      port: origin.port === '' ? undefined : Number(origin.port),
      path,
      method: req.method,
      headers: req.headers,
      agent: req.agent,
      signal: req.signal,
    });
    r.setTimeout(req.timeoutMs, () => r.destroy(new TransientError(`no response for ${req.timeoutMs} ms`)));
    // The idle timer stays on the socket while the body streams in.
    r.on('response', resolve);
    r.on('error', (err) => reject(classify(err, req.signal)));
    r.end(req.body);
  });
}

/** A socket error as the caller acts on it: abort, transient, or final. */
export function classify(err: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return toAbortError(signal.reason);
  if (err instanceof TransientError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && (RETRYABLE.has(code) || code.startsWith('ERR_STREAM') || code === 'HPE_INVALID_CONSTANT')) {
    return new TransientError(`${(err as Error).message}`, undefined, { cause: err });
  }
  if ((err as Error).message === 'socket hang up' || (err as Error).message === 'aborted') return new TransientError((err as Error).message, undefined, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Streams the body to `deliver` (chunk, position in the body) and resolves
 * with the byte count; a body longer than `limit` is cut off and refused, a
 * connection that drops mid-body is a TransientError.
 */
export function readBody(res: HttpResponse, limit: number, deliver: (chunk: Buffer, at: number) => void, signal: AbortSignal | undefined, target?: Target): Promise<number> {
  if (!('on' in res)) return res.readBody(limit, deliver, target);
  return new Promise((resolve, reject) => {
    let got = 0;
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      res.destroy();
      reject(err);
    };
    res.on('data', (chunk: Buffer) => {
      if (done) return;
      if (got + chunk.length > limit) {
        fail(new TransientError(`the body is longer than the ${limit} bytes announced`));
        return;
      }
      deliver(chunk, got);
      got += chunk.length;
    });
    res.on('end', () => {
      if (done) return;
      done = true;
      resolve(got);
    });
    res.on('aborted', () => fail(new TransientError('the connection closed mid-body')));
    res.on('error', (err) => fail(classify(err, signal)));
    res.on('close', () => {
      if (!res.complete) fail(new TransientError(`the connection closed after ${got} bytes of the body`));
    });
  });
}

/** The whole body, at most `limit` bytes (a longer one is a TransientError). */
export async function readAll(res: http.IncomingMessage, limit: number, signal: AbortSignal | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const total = await readBody(res, limit, (chunk) => chunks.push(chunk), signal);
  return Buffer.concat(chunks, total);
}

/**
 * Throws away a body that will not be used: a short one (an error page) is
 * drained so its connection is kept, anything else closes the connection.
 */
export function discard(res: HttpResponse): void {
  const length = Number(res.headers['content-length'] ?? NaN);
  if (res.statusCode !== 200 && length <= 65536) res.resume();
  else res.destroy();
}

/** A response header's first value. */
export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
