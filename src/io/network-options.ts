/**
 * What the network stores (HTTP(S), NBD, S3) take from a job's options.
 * Every field is optional; each store documents its defaults.
 */

/** A request about to be sent, for {@link NetworkOptions.authorize}. */
export interface NetworkRequest {
  /** The URL (with its query string: presigned URLs carry their signature there). */
  readonly url: string;
  /** `GET`, `HEAD`, `PUT`, `POST`, `DELETE`. */
  readonly method: string;
  /** Headers so far; the hook may add or replace entries. */
  readonly headers: Record<string, string>;
}

/** Options of the network stores. */
export interface NetworkOptions {
  /** Extra HTTP headers on every request (`--header 'Name: value'`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Called before every HTTP request, e.g. to add a fresh bearer token. */
  readonly authorize?: ((request: NetworkRequest) => void | Promise<void>) | undefined;
  /** Requests in flight per store (default 4). */
  readonly concurrency?: number | undefined;
  /** Attempts per request before it fails (default 5). */
  readonly retries?: number | undefined;
  /** Milliseconds a request may take before it is retried (default 30 000). */
  readonly timeoutMs?: number | undefined;
  /** Aborts every request in flight. */
  readonly signal?: AbortSignal | undefined;
}
