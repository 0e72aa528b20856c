/**
 * AWS Signature Version 4 for S3 (header form), with node:crypto. Pure:
 * the same request, keys and clock give the same headers, so the AWS
 * documentation's examples are its tests.
 */
import { createHash, createHmac } from 'node:crypto';

import type { S3Credentials } from './config.js';

/** The payload hash of a body sent without hashing it (TLS protects it in transit). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** A request to sign. */
export interface SignableRequest {
  /** `GET`, `PUT`, … */
  readonly method: string;
  /** The host header (`host[:port]`). */
  readonly host: string;
  /** The path, already URI-encoded as sent ({@link encodeKeyPath}). */
  readonly path: string;
  /** Query parameters, unencoded. */
  readonly query: readonly (readonly [string, string])[];
  /** Headers to sign (names in any case); `host`, `x-amz-date` and `x-amz-content-sha256` are added. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex SHA-256 of the body, or {@link UNSIGNED_PAYLOAD}. */
  readonly payloadHash: string;
}

/** RFC 3986 encoding, as SigV4 wants it (`encodeURIComponent` leaves `!'()*`). */
export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An object key as a URI path: each segment encoded, slashes kept. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(rfc3986).join('/');
}

/** The query string as sent and as signed: encoded pairs sorted by name, then value. */
export function canonicalQuery(query: readonly (readonly [string, string])[]): string {
  const pairs = query.map(([k, v]) => [rfc3986(k), rfc3986(v)] as const);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Hex SHA-256. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** `20130524T000000Z`. */
function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * The headers to send: `request.headers` plus `host`, `x-amz-date`,
 * `x-amz-content-sha256`, `x-amz-security-token` (temporary keys) and
 * `authorization`, every one of them signed.
 */
export function signRequest(request: SignableRequest, credentials: S3Credentials, region: string, now: Date = new Date()): Record<string, string> {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ');
  headers['host'] = request.host;
  headers['x-amz-date'] = date;
  headers['x-amz-content-sha256'] = request.payloadHash;
  if (credentials.sessionToken !== undefined) headers['x-amz-security-token'] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = [request.method, request.path, canonicalQuery(request.query), ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), request.payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}
