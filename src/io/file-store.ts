import { constants } from 'node:fs';
import { open as fsOpen, type FileHandle } from 'node:fs/promises';

import { IoError, UnsafeReferenceError } from '../core/errors.js';
import type { ByteStore, StoreIdentity } from './byte-store.js';
import { fsError } from './errno.js';

/** How to open a file store. */
export interface FileStoreOptions {
  /** Open for reading only (the default). */
  readOnly?: boolean | undefined;
  /** Create the file (truncating an existing one). */
  create?: boolean | undefined;
  /** Allow block and character devices (targets such as /dev/sdX); never FIFOs or sockets. */
  allowDevices?: boolean | undefined;
}

const FILL_CHUNK = 1024 * 1024;

/**
 * A ByteStore over a local file, with positional reads and writes.
 *
 * Opening never blocks on a FIFO: the file is opened non-blocking and its
 * type checked before any I/O; FIFOs, sockets and directories are refused.
 */
export class FileStore implements ByteStore {
  readonly name: string;
  readonly readOnly: boolean;
  readonly #fh: FileHandle;
  readonly #identity: StoreIdentity;
  readonly #isDevice: boolean;
  #closed = false;

  private constructor(name: string, fh: FileHandle, readOnly: boolean, identity: StoreIdentity, isDevice: boolean) {
    this.name = name;
    this.#fh = fh;
    this.readOnly = readOnly;
    this.#identity = identity;
    this.#isDevice = isDevice;
  }

  /**
   * Opens `path`.
   *
   * @throws {NotFoundError} ENOENT when it does not exist
   * @throws {UnsafeReferenceError} EUNSAFE for FIFOs, sockets, directories (and devices unless allowed)
   */
  static async open(path: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const readOnly = options.readOnly ?? true;
    let flags = (readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
    if (options.create) flags |= constants.O_CREAT | constants.O_TRUNC;
    let fh: FileHandle;
    try {
      fh = await fsOpen(path, flags, 0o644);
    } catch (err) {
      throw fsError(err, `Could not open '${path}'`, path);
    }
    try {
      const st = await fh.stat();
      const device = st.isBlockDevice() || st.isCharacterDevice();
      if (!st.isFile() && !(device && options.allowDevices)) {
        const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
        throw new UnsafeReferenceError(`Could not open '${path}': it is ${what}, not a regular file`, { file: path });
      }
      return new FileStore(path, fh, readOnly, { dev: st.dev, ino: st.ino }, device);
    } catch (err) {
      await fh.close();
      throw fsError(err, `Could not open '${path}'`, path);
    }
  }

  identity(): StoreIdentity {
    return this.#identity;
  }

  async size(): Promise<number> {
    this.#check();
    if (this.#isDevice) {
      // Devices report size 0 from fstat; ask by seeking through a read at the end instead.
      const st = await this.#fh.stat();
      return st.size;
    }
    return (await this.#fh.stat()).size;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#check();
    let got = 0;
    while (got < into.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.#fh.read(into, got, into.length - got, offset + got));
      } catch (err) {
        throw fsError(err, `Could not read '${this.name}' at offset ${offset + got}`, this.name);
      }
      if (n === 0) break;
      got += n;
    }
    if (got < into.length) into.fill(0, got);
    return got;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#checkWritable();
    let done = 0;
    while (done < data.length) {
      try {
        const { bytesWritten } = await this.#fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      } catch (err) {
        throw fsError(err, `Could not write '${this.name}' at offset ${offset + done}`, this.name);
      }
    }
  }

  async truncate(size: number): Promise<void> {
    this.#checkWritable();
    try {
      await this.#fh.truncate(size);
    } catch (err) {
      throw fsError(err, `Could not resize '${this.name}'`, this.name);
    }
  }

  async flush(): Promise<void> {
    this.#check();
    if (this.readOnly) return;
    try {
      await this.#fh.datasync();
    } catch (err) {
      throw fsError(err, `Could not flush '${this.name}'`, this.name);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }

  async allocatedSize(): Promise<number> {
    this.#check();
    const st = await this.#fh.stat();
    return st.blocks * 512;
  }

  /**
   * Allocates the range. Node has no fallocate(2) binding, so both modes
   * write zeros where the file has none yet; the result is the same
   * allocated file qemu-img's falloc and full modes leave.
   */
  async preallocate(offset: number, length: number, _mode: 'falloc' | 'full'): Promise<void> {
    this.#checkWritable();
    const zeros = new Uint8Array(Math.min(FILL_CHUNK, length));
    for (let off = offset; off < offset + length; off += zeros.length) {
      const n = Math.min(zeros.length, offset + length - off);
      await this.write(off, n === zeros.length ? zeros : zeros.subarray(0, n));
    }
  }

  #check(): void {
    if (this.#closed) throw new IoError(`File '${this.name}' is closed`, { file: this.name });
  }

  #checkWritable(): void {
    this.#check();
    if (this.readOnly) throw new IoError(`File '${this.name}' is open read-only`, { file: this.name });
  }
}
