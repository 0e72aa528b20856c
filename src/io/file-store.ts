import { constants } from 'node:fs';
import { open as fsOpen, type FileHandle } from 'node:fs/promises';

import { IoError, UnsafeReferenceError } from '../core/errors.js';
import type { ByteStore, HostExtent, LockRequest, StoreIdentity } from './byte-store.js';
import { fsError } from './errno.js';
import { acquireImageLocks, releaseImageLocks } from './image-lock.js';
import { native } from './native.js';

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
  #locked = false;

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
    if (this.#locked) releaseImageLocks(this.#fh.fd);
    await this.#fh.close();
  }

  async allocatedSize(): Promise<number> {
    this.#check();
    const st = await this.#fh.stat();
    return st.blocks * 512;
  }

  /**
   * Allocates the range: fallocate(2) for `falloc` when the native module is
   * there, else (and for `full`) by writing zeros.
   */
  async preallocate(offset: number, length: number, mode: 'falloc' | 'full'): Promise<void> {
    this.#checkWritable();
    if (mode === 'falloc' && native && length > 0) {
      try {
        await native.fallocate(this.#fh.fd, 0, offset, length);
        return;
      } catch {
        // file system without fallocate: write zeros below
      }
    }
    const zeros = new Uint8Array(Math.min(FILL_CHUNK, length));
    for (let off = offset; off < offset + length; off += zeros.length) {
      const n = Math.min(zeros.length, offset + length - off);
      await this.write(off, n === zeros.length ? zeros : zeros.subarray(0, n));
    }
  }

  /** Data and hole runs from SEEK_DATA/SEEK_HOLE; undefined without the native module. */
  async extents(offset: number, length: number): Promise<readonly HostExtent[] | undefined> {
    this.#check();
    if (!native || this.#isDevice) return undefined;
    const end = offset + length;
    const out: HostExtent[] = [];
    let pos = offset;
    while (pos < end) {
      let data: number;
      try {
        data = native.seek(this.#fh.fd, pos, false);
      } catch {
        return out.length > 0 ? out : undefined;
      }
      if (data < 0 || data >= end) {
        out.push({ offset: pos, length: end - pos, data: false });
        break;
      }
      if (data > pos) out.push({ offset: pos, length: data - pos, data: false });
      const hole = native.seek(this.#fh.fd, data, true);
      const stop = Math.min(end, hole < 0 ? end : hole);
      out.push({ offset: data, length: stop - data, data: true });
      pos = stop;
      if (out.length >= 32) break; // callers use the first few; the rest would be recomputed anyway
    }
    return out;
  }

  /** Punches a hole (`unmap`) or zeroes the range in place with fallocate(2). */
  async zeroRange(offset: number, length: number, unmap: boolean): Promise<boolean> {
    this.#checkWritable();
    if (!native || this.#isDevice || length === 0) return length === 0;
    try {
      await native.fallocate(this.#fh.fd, unmap ? 1 : 2, offset, length);
      return true;
    } catch {
      return false;
    }
  }

  /** copy_file_range from another file store (copy offload, `convert -C`). */
  async copyFrom(source: ByteStore, sourceOffset: number, offset: number, length: number): Promise<boolean> {
    this.#checkWritable();
    if (!native || !(source instanceof FileStore)) return false;
    let done = 0;
    try {
      while (done < length) {
        const n = await native.copyRange(source.#fh.fd, sourceOffset + done, this.#fh.fd, offset + done, length - done);
        if (n === 0) break;
        done += n;
      }
    } catch {
      return false;
    }
    if (done < length) {
      // the source ended early: the rest reads as zeros
      await this.write(offset + done, new Uint8Array(length - done));
    }
    return true;
  }

  /** qemu-compatible image locks (no-op without the native module). */
  async lock(request: LockRequest): Promise<void> {
    this.#check();
    if (request.write && this.readOnly) throw new IoError(`Cannot take write locks on read-only '${this.name}'`);
    this.#locked = acquireImageLocks(this.#fh.fd, this.name, request);
  }

  #check(): void {
    if (this.#closed) throw new IoError(`File '${this.name}' is closed`, { file: this.name });
  }

  #checkWritable(): void {
    this.#check();
    if (this.readOnly) throw new IoError(`File '${this.name}' is open read-only`, { file: this.name });
  }
}
