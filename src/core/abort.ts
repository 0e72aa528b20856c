import { AbortError } from './errors.js';

/** Throws an AbortError (with the signal's reason as cause) when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw toAbortError(signal.reason);
}

/** Turns an abort reason into vdisk's AbortError, keeping ours as they are. */
export function toAbortError(reason: unknown): AbortError {
  if (reason instanceof AbortError) return reason;
  return new AbortError('The operation was aborted', { cause: reason });
}

