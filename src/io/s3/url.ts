/**
 * `s3://bucket/key` names: parsed once, and printed in messages with any
 * query string redacted (a name may carry one by mistake; it never reaches
 * a message).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { redactUrl } from '../http/url.js';

/** A bucket and an object key. */
export interface S3Location {
  /** The bucket. */
  readonly bucket: string;
  /** The object key (no leading slash). */
  readonly key: string;
  /** `s3://bucket/key`, for messages. */
  readonly name: string;
}

/** True for an `s3://` name. */
export function isS3Name(name: string): boolean {
  return /^s3:\/\//i.test(name);
}

/**
 * Splits `s3://bucket/key`.
 *
 * @throws {InvalidArgumentError} EINVAL for a name with no bucket or no key
 */
export function parseS3Name(name: string): S3Location {
  const shown = redactUrl(name);
  const m = /^s3:\/\/([^/?#]+)\/([^?#]+)$/i.exec(name);
  if (!m || m[1] === undefined || m[2] === undefined) throw new InvalidArgumentError(`Invalid S3 object name '${shown}': expected s3://bucket/key`, { file: shown });
  return { bucket: m[1], key: m[2], name: shown };
}
