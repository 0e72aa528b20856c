/**
 * S3 answers as vdisk's typed errors: denied → PermissionError, missing →
 * NotFoundError, a changed object and everything else → IoError, each
 * naming the `s3://` object (never a query string or a signature).
 */
import { IoError, NotFoundError, PermissionError, type VdiskError } from '../../core/errors.js';

/** The `Code` and `Message` of an S3 error body, when it has them. */
export function s3ErrorBody(body: Uint8Array): { code: string | undefined; message: string | undefined } {
  const text = Buffer.from(body.subarray(0, 64 * 1024)).toString('utf8');
  const field = (name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
  return { code: field('Code'), message: field('Message') };
}

/** `what 'name': reason`, or the bare reason when `what` is empty (the image open names the object itself). */
function phrase(what: string, name: string, reason: string): string {
  return what === '' ? reason : `${what} '${name}': ${reason}`;
}

/**
 * The error for an S3 status: `what` is the failed step as a phrase
 * (`Could not read bytes 0-511 of`; empty for an open, which the image
 * open words), `name` the object.
 */
export function statusError(what: string, name: string, status: number, body: Uint8Array, attempts: number): VdiskError {
  const { code, message } = s3ErrorBody(body);
  const detail = [code, message].filter((s) => s !== undefined).join(': ');
  const tail = `HTTP ${status}${detail === '' ? '' : `, ${detail}`}${attempts > 1 ? `, after ${attempts} attempts` : ''}`;
  const details = { file: name, data: { status, s3Code: code, attempts } };
  if (status === 401 || status === 403) return new PermissionError(phrase(what, name, `Permission denied (${tail})`), details);
  if (status === 404) return new NotFoundError(phrase(what, name, `No such file or directory (${tail})`), details);
  if (status === 412) return new IoError(phrase(what, name, `the object changed while it was read (${tail})`), details);
  return new IoError(phrase(what, name, tail), details);
}

/** A transport failure (reset, timeout) that outlasted the retries, or one no retry cures. */
export function transportError(what: string, name: string, err: Error, attempts: number): IoError {
  const after = attempts > 1 ? `, after ${attempts} attempts` : '';
  const code = errnoOf(err) ?? errnoOf(err.cause);
  return new IoError(phrase(what, name, `${err.message}${code === undefined ? '' : ` (${code})`}${after}`), { file: name, cause: err, data: { attempts } });
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
