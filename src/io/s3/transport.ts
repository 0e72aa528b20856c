/**
 * One HTTP exchange over node:http(s) keep-alive connections: the bytes
 * in, the status, headers and body out. No retries, signing or S3
 * knowledge here, so the HTTP store's transport can replace it.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

import { toAbortError } from '../../core/abort.js';
import { VdiskError } from '../../core/errors.js';

/** An HTTP request. */
export interface HttpRequest {
  /** `GET`, `PUT`, … */
  readonly method: string;
  /** Scheme, host and port. */
  readonly origin: URL;
  /** Path and query, encoded as sent. */
  readonly path: string;
  /** Headers, sent as given. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body: bytes, or a stream of exactly `content-length` bytes. */
  readonly body?: Uint8Array | Readable | undefined;
  /** Milliseconds without progress before the exchange fails with ETIMEDOUT. */
  readonly timeoutMs: number;
  /** Most body bytes accepted; a longer body fails the exchange. */
  readonly maxBody: number;
  /** Aborts the exchange. */
  readonly signal?: AbortSignal | undefined;
}

/** An HTTP response, its body read whole. */
export interface HttpResponse {
  /** Status code. */
  readonly status: number;
  /** Headers (names in lower case). */
  readonly headers: IncomingHttpHeaders;
  /** The body. */
  readonly body: Buffer;
}

/** A failure of the exchange itself (reset, timeout, a body longer than allowed): `code` is the errno name. */
export class TransportError extends Error {
  /** `ECONNRESET`, `ETIMEDOUT`, `EMSGSIZE`, … */
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

function readBody(res: IncomingMessage, maxBody: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on('data', (c: Buffer) => {
      total += c.length;
      if (total > maxBody) {
        res.destroy(new TransportError('EMSGSIZE', `response body longer than ${maxBody} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.once('end', () => resolve(Buffer.concat(chunks, total)));
    res.once('error', reject);
    res.once('aborted', () => reject(new TransportError('ECONNRESET', 'response aborted')));
  });
}

/** Sends `req` and reads the whole response. */
export function send(req: HttpRequest): Promise<HttpResponse> {
  if (req.signal?.aborted) return Promise.reject(toAbortError(req.signal.reason));
  const https = req.origin.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const r = (https ? httpsRequest : httpRequest)({
      protocol: req.origin.protocol,
      hostname: req.origin.hostname.replace(/^\[|\]$/g, ''),
      port: req.origin.port === '' ? undefined : Number(req.origin.port),
      method: req.method,
      path: req.path,
      headers: req.headers,
      agent: https ? httpsAgent : httpAgent,
    });
    const onAbort = (): void => void r.destroy(toAbortError(req.signal?.reason));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => req.signal?.removeEventListener('abort', onAbort);
    r.setTimeout(req.timeoutMs, () => r.destroy(new TransportError('ETIMEDOUT', `no answer in ${req.timeoutMs} ms`)));
    r.once('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(err instanceof TransportError || err instanceof VdiskError || typeof err.code !== 'string' ? err : new TransportError(err.code, err.message, err));
    });
    r.once('response', (res) => {
      readBody(res, req.maxBody).then(
        (body) => {
          done();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        },
        (err: unknown) => {
          done();
          r.destroy();
          reject(err instanceof TransportError ? err : new TransportError('ECONNRESET', err instanceof Error ? err.message : String(err), err));
        },
      );
    });
    const body = req.body;
    if (body === undefined) r.end();
    else if (body instanceof Uint8Array) r.end(body);
    else {
      body.once('error', (err) => r.destroy(err));
      body.pipe(r);
    }
  });
}
