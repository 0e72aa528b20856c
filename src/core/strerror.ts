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
  ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty',
  EAGAIN: 'Resource temporarily unavailable',
  EBADF: 'Bad file descriptor',
  ENOMEM: 'Cannot allocate memory',
  ENOTSUP: 'Operation not supported',
  EOPNOTSUPP: 'Operation not supported',
  ENOSYS: 'Function not implemented',
  ENODEV: 'No such device',
  ENFILE: 'Too many open files in system',
  EDQUOT: 'Disk quota exceeded',
  ESPIPE: 'Illegal seek',
  EOVERFLOW: 'Value too large for defined data type',
  EXDEV: 'Invalid cross-device link',
  EMLINK: 'Too many links',
  ESTALE: 'Stale file handle',
  EINTR: 'Interrupted system call',
  ENOLCK: 'No locks available',
  EDEADLK: 'Resource deadlock avoided',
  ERANGE: 'Numerical result out of range',
  ECANCELED: 'Operation canceled',
  EPIPE: 'Broken pipe',
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  ECONNABORTED: 'Software caused connection abort',
  ETIMEDOUT: 'Connection timed out',
  ENOTCONN: 'Transport endpoint is not connected',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EPROTO: 'Protocol error',
  ENOTSOCK: 'Socket operation on non-socket',
  EUCLEAN: 'Structure needs cleaning',
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
