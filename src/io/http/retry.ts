/**
 * How long to wait before another attempt: exponential backoff with jitter,
 * or what the server asked for (Retry-After), within a cap.
 */
import { toAbortError } from '../../core/abort.js';

/** First backoff step. */
const BASE_MS = 100;
/** Longest wait between two attempts, whatever the server asks. */
export const MAX_WAIT_MS = 30_000;

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
