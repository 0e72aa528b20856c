/**
 * The file-system calls vdisk makes, as promises over node:fs's callback
 * calls, and {@link FdHandle}, the part of Node's FileHandle vdisk uses.
 * Not node:fs/promises: loading it (with the readline, watcher and stream
 * modules it pulls in) cost ~1 ms of every command's start-up, a fortieth
 * of `vdisk info`. Errors are node:fs's own (code, syscall, path), as
 * node:fs/promises gives them.
 */
import * as fs from 'node:fs';
import type { Mode, OpenMode, PathLike, RmOptions, Stats } from 'node:fs';

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;

function call<T>(start: (done: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value))));
}

export const stat = (path: PathLike): Promise<Stats> => call((cb) => fs.stat(path, cb));
export const lstat = (path: PathLike): Promise<Stats> => call((cb) => fs.lstat(path, cb));
export const rename = (from: PathLike, to: PathLike): Promise<void> => call<void>((cb) => fs.rename(from, to, (err) => cb(err, undefined)));
export const chmod = (path: PathLike, mode: number): Promise<void> => call<void>((cb) => fs.chmod(path, mode, (err) => cb(err, undefined)));
export const chown = (path: PathLike, uid: number, gid: number): Promise<void> => call<void>((cb) => fs.chown(path, uid, gid, (err) => cb(err, undefined)));
export const rm = (path: PathLike, options: RmOptions = {}): Promise<void> => call<void>((cb) => fs.rm(path, options, (err) => cb(err, undefined)));
export const mkdtemp = (prefix: string): Promise<string> => call((cb) => fs.mkdtemp(prefix, cb));
export const readFile = (path: PathLike, encoding: BufferEncoding): Promise<string> => call((cb) => fs.readFile(path, encoding, cb));
export const readFileBytes = (path: PathLike): Promise<Buffer> => call((cb) => fs.readFile(path, cb));
export const realpathBytes = (path: PathLike): Promise<Buffer> => call((cb) => fs.realpath(path, { encoding: 'buffer' }, cb));
export const readlinkBytes = (path: PathLike): Promise<Buffer> => call((cb) => fs.readlink(path, { encoding: 'buffer' }, cb));

/** The error an operation on a closed handle gets (FileHandle's). */
function closedError(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error('file closed'), { code: 'EBADF', syscall });
}

/**
 * An open file descriptor with FileHandle's promise methods. As with a
 * FileHandle, `close()` waits for the handle's operations in flight (so the
 * descriptor is never closed, and perhaps reused, under one) and later
 * operations fail with EBADF. Unlike one, it is not closed when collected:
 * every owner closes it (FileStore, the target's placeholder).
 */
export class FdHandle {
  readonly #fd: number;
  #closed = false;
  #pending = 0;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens `path` (fs.open's flags and mode). */
  static async open(path: PathLike, flags?: OpenMode, mode?: Mode): Promise<FdHandle> {
    return new FdHandle(await call<number>((cb) => fs.open(path, flags, mode, cb)));
  }

  /** The descriptor; -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  #run<T>(syscall: string, start: (fd: number, done: Callback<T>) => void): Promise<T> {
    if (this.#closing) return Promise.reject(closedError(syscall));
    this.#pending++;
    return call<T>((cb) => start(this.#fd, cb)).finally(() => {
      if (--this.#pending === 0) this.#drained?.();
    });
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.#run<number>('read', (fd, cb) => fs.read(fd, buffer, offset, length, position, cb)).then((bytesRead) => ({ bytesRead }));
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    return this.#run<number>('write', (fd, cb) => fs.write(fd, buffer, offset, length, position, cb)).then((bytesWritten) => ({ bytesWritten }));
  }

  stat(): Promise<Stats> {
    return this.#run('fstat', (fd, cb) => fs.fstat(fd, cb));
  }

  truncate(length = 0): Promise<void> {
    return this.#run<void>('ftruncate', (fd, cb) => fs.ftruncate(fd, length, (err) => cb(err, undefined)));
  }

  datasync(): Promise<void> {
    return this.#run<void>('fdatasync', (fd, cb) => fs.fdatasync(fd, (err) => cb(err, undefined)));
  }

  sync(): Promise<void> {
    return this.#run<void>('fsync', (fd, cb) => fs.fsync(fd, (err) => cb(err, undefined)));
  }

  /** Closes the descriptor once the operations in flight have ended; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#closed = true;
      await call<void>((cb) => fs.close(this.#fd, (err) => cb(err, undefined)));
    })();
    return this.#closing;
  }
}
