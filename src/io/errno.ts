import { IoError, NotFoundError, VdiskError } from '../core/errors.js';

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

/** Wraps a Node fs error as a vdisk error whose message reads like qemu-img's. */
export function fsError(err: unknown, prefix: string, file: string): VdiskError {
  if (err instanceof VdiskError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = `${prefix}: ${strerror(code)}`;
  if (code === 'ENOENT') return new NotFoundError(message, { file, cause: err });
  return new IoError(message, { file, cause: err });
}
