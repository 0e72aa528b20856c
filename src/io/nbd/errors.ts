/**
 * NBD errors in qemu-img's words: the server's error numbers (NBD's own
 * numbering, the common Linux values) and socket failures.
 */
import { InvalidArgumentError, IoError, NotFoundError, PermissionError, UnsupportedError, VdiskError } from '../../core/errors.js';
import { strerror } from '../../core/strerror.js';

/** NBD error numbers, their C library texts and the Node code they stand for. */
const NBD_ERRORS: Readonly<Record<number, readonly [string, string]>> = {
  1: ['EPERM', 'Operation not permitted'],
  5: ['EIO', 'Input/output error'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  22: ['EINVAL', 'Invalid argument'],
  28: ['ENOSPC', 'No space left on device'],
  75: ['EOVERFLOW', 'Value too large for defined data type'],
  95: ['ENOTSUP', 'Operation not supported'],
  108: ['ESHUTDOWN', 'Cannot send after transport endpoint shutdown'],
};

/** Resolver error texts (getaddrinfo's, not errno values: core/strerror has the socket errors). */
const SOCKET_TEXT: Readonly<Record<string, string>> = {
  ENOTFOUND: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
};

/**
 * A failed request as the server reported it. Unknown numbers count as
 * EINVAL, as qemu's client maps them.
 */
export function serverError(errno: number, name: string, offset: number | undefined, serverMessage?: string): VdiskError {
  const [code, text] = NBD_ERRORS[errno] ?? NBD_ERRORS[22] ?? ['EINVAL', 'Invalid argument'];
  const details = { file: name, offset, errno: nodeErrno(code), data: { nbdError: errno, ...(serverMessage ? { serverMessage } : {}) } };
  if (code === 'EPERM') return new PermissionError(text, details);
  if (code === 'EINVAL') return new InvalidArgumentError(text, details);
  if (code === 'ENOTSUP') return new UnsupportedError(text, details);
  return new IoError(text, details);
}

function nodeErrno(code: string): number {
  const table: Record<string, number> = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 };
  return table[code] ?? 5;
}

/** The server closed the connection while an answer was owed. */
export function closedByServer(name: string): IoError {
  return new IoError(`Connection to '${name}' closed by the server`, { file: name, errno: 5 });
}

/** No answer came within the connection's timeout. */
export function noAnswer(name: string, timeoutMs: number): IoError {
  return new IoError(`Connection to '${name}' timed out: no answer from the server in ${timeoutMs} ms`, { file: name, errno: 110 });
}

/** A socket failure (connect, reset) as qemu words it. */
export function socketError(err: unknown, name: string, prefix?: string): VdiskError {
  if (err instanceof VdiskError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = (code && SOCKET_TEXT[code]) ?? strerror(code);
  const message = prefix ? `${prefix}: ${text}` : text;
  if (code === 'ENOENT') return new NotFoundError(message, { file: name, cause: err });
  return new IoError(message, { file: name, cause: err });
}

/** Names the export in an error that lacks it (`NBD protocol error from 'nbd://…': …`). */
export function named(err: unknown, name: string): VdiskError {
  if (!(err instanceof VdiskError)) return new IoError(`NBD error from '${name}': ${err instanceof Error ? err.message : String(err)}`, { file: name, cause: err });
  if (err.file !== undefined) return err;
  const message = err.data?.['protocol'] === true ? err.message.replace('NBD protocol error:', `NBD protocol error from '${name}':`) : err.message;
  return err.rephrase(message, { file: name });
}
