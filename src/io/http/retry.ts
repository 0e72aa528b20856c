/**
 * The one retry policy of the network stores (HTTP(S) and S3): resets,
 * timeouts and 408/429/5xx are tried again after exponential backoff with
 * jitter, or after what the server asked for (Retry-After) within a cap;
 * other 4xx never are.
 */
import { toAbortError } from '../../core/abort.js';
import { VdiskError } from '../../core/errors.js';
import { classify, TransientError } from './exchange.js';

/** First backoff step. */
const BASE_MS = 100;
/** Longest wait between two attempts, whatever the server asks. */
export const MAX_WAIT_MS = 30_000;
/** Attempts per request when the caller does not say. */
const DEFAULT_RETRIES = 5;

/** How many attempts, and what aborts the waits between them. */
export interface RetryOptions {
  /** Attempts per request (default 5). */
  readonly retries?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Words a failure the caller did not type itself: `err` ended attempt
 * `attempts`, and `exhausted` says it was transient but the last allowed.
 */
export type Failure = (err: Error, attempts: number, exhausted: boolean) => Error;

/** True for the statuses another attempt may cure: 408, 429 and 5xx. */
export function transientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Runs `attempt` (given its number, from 1) until it succeeds, fails for
 * good, or the attempts run out. Typed errors (and aborts) pass as they
 * are; `fail` words the others.
 */
export async function retrying<T>(options: RetryOptions, attempt: (n: number) => Promise<T>, fail: Failure): Promise<T> {
  const limit = Math.max(1, options.retries ?? DEFAULT_RETRIES);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (raw) {
      const err = classify(raw, options.signal);
      if (err instanceof VdiskError) throw err;
      if (!(err instanceof TransientError)) throw fail(err, n, false);
      if (n >= limit) throw fail(err, n, true);
      await sleep(backoffMs(n, err.retryAfterMs), options.signal);
    }
  }
}

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1):
 * half to all of BASE·2^(attempt-1) (jitter spreads clients that failed
 * together), or the server's Retry-After when it is longer.
 */
export function backoffMs(attempt: number, retryAfterMs: number | undefined): number {
  const step = Math.min(MAX_WAIT_MS, BASE_MS * 2 ** Math.min(attempt - 1, 20));
  const jittered = step / 2 + Math.random() * (step / 2);
  return Math.min(MAX_WAIT_MS, Math.max(jittered, retryAfterMs ?? 0));
}

/** A Retry-After header (delay seconds or an HTTP date) in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(MAX_WAIT_MS, Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.min(MAX_WAIT_MS, Math.max(0, date - now));
}

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` fires. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(toAbortError(signal.reason));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(toAbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
