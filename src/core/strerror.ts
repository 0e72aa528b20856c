import { VdiskError } from './errors.js';

/** The C library's texts for Node errno codes, as qemu-img prints them. */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  EFBIG: 'File too large',
  EIO: 'Input/output error',
  EEXIST: 'File exists',
  EBUSY: 'Device or resource busy',
  EMFILE: 'Too many open files',
  ENXIO: 'No such device or address',
  EINVAL: 'Invalid argument',
  ETXTBSY: 'Text file busy',
};

/** The C library's text for a Node errno code, as qemu-img prints it. */
export function strerror(code: string | undefined): string {
  return (code && STRERROR[code]) ?? code ?? 'Unknown error';
}

/**
 * The errno code (`EFBIG`, `ENOSPC`, …) of the system error in `err`'s
 * cause chain, if there is one: vdisk's own errors are passed over (their
 * codes, EIO and the like, say nothing of the system's).
 */
export function systemErrno(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof VdiskError) continue;
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
  }
  return undefined;
}

/**
 * `err` reworded as qemu words a failed step with a system error: `what`,
 * then the C library's text (`Could not write refcount table: File too
 * large`). The system error stays in the cause chain; errors without one
 * are returned as they are.
 */
export function inStepWords(err: unknown, what: string): unknown {
  const code = systemErrno(err);
  return code && err instanceof VdiskError ? err.rephrase(`${what}: ${strerror(code)}`) : err;
}

/** `step`, failing as {@link inStepWords} words it. */
export function asStep<T>(what: string, step: Promise<T>): Promise<T> {
  return step.catch((err: unknown) => Promise.reject(inStepWords(err, what)));
}
