/**
 * HTTP(S) names: what is sent and what is shown. Presigned URLs carry their
 * signature in the query string and some URLs carry a password, so every
 * message names the URL with both removed.
 */
import { InvalidArgumentError } from '../../core/errors.js';

/** A parsed `http://` or `https://` name. */
export interface HttpTarget {
  /** The URL requests go to (credentials removed: they travel as a header). */
  readonly url: URL;
  /** The URL as messages show it (credentials and query string redacted). */
  readonly shown: string;
  /** `Authorization: Basic …` from `user:password@` in the URL, if any. */
  readonly basicAuth: string | undefined;
}

/**
 * `url` with any `user:password@` and query string replaced, for messages
 * and logs. HTTP(S) URLs are shown as they are sent; other names (`s3://`)
 * keep their spelling, their query string and fragment cut off.
 */
export function redactUrl(url: string): string {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    const q = url.search(/[?#]/);
    return q < 0 ? url : `${url.slice(0, q)}?…`;
  }
  const auth = u.username !== '' || u.password !== '' ? '…@' : '';
  const query = u.search !== '' ? '?…' : '';
  return `${u.protocol}//${auth}${u.host}${u.pathname}${query}`;
}

/**
 * Parses an `http(s)://` name.
 *
 * @throws {InvalidArgumentError} EINVAL for a name that is not an HTTP(S) URL
 */
export function parseHttpTarget(name: string): HttpTarget {
  let url: URL;
  try {
    url = new URL(name);
  } catch {
    throw new InvalidArgumentError(`Invalid URL '${redactUrl(name)}'`, { file: redactUrl(name) });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`Not an HTTP(S) URL: '${redactUrl(name)}'`, { file: redactUrl(name) });
  }
  let basicAuth: string | undefined;
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    basicAuth = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  return { url, shown: redactUrl(name), basicAuth };
}
