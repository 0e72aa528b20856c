import { IoError, NotFoundError, VdiskError } from '../core/errors.js';
import { strerror } from '../core/strerror.js';

export { strerror };


/** Wraps a Node fs error as a vdisk error whose message reads like qemu-img's. */
export function fsError(err: unknown, prefix: string, file: string): VdiskError {
  if (err instanceof VdiskError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = `${prefix}: ${strerror(code)}`;
  if (code === 'ENOENT') return new NotFoundError(message, { file, cause: err });
  return new IoError(message, { file, cause: err });
}
