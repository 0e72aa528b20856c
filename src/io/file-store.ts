import { constants, type Stats } from 'node:fs';

import { InvalidArgumentError, IoError, UnsafeReferenceError, UnsupportedError } from '../core/errors.js';
import { AsyncMutex } from '../core/mutex.js';
import type { ByteStore, HostExtent, LockRequest, SparseRuns, SparseScan, StoreIdentity } from './byte-store.js';
import { DEFAULT_CACHE_MODE, cacheSemantics, type CacheMode } from '../core/cache-mode.js';
import { canCopyScan, copyScan, scanWrite } from './copy-scan.js';
import { BouncePool, DEFAULT_DIRECT_ALIGNMENT, DirectIo, MAX_BOUNCE } from './direct-io.js';
import { fsError } from './errno.js';
import { readFile, type FdHandle } from './fs-calls.js';
import { open as fsOpen, rm } from './fs-names.js';
import { acquireImageLocks, releaseImageLocks, writeLockConflict } from './image-lock.js';
import { native } from './native.js';


/** What qemu's file driver allocates at the start of a file it grows from length 0. */
const FIRST_BLOCK = 4096;
/**
 * A check of the file actually opened (its descriptor and fstat), run
 * before locks, I/O or emptying; throwing refuses the file. The resolver's
 * confinement of untrusted references lives here, where no rename or
 * symlink switch between a check and the open can fool it.
 */
export type OpenedFileCheck = (fd: number, st: { readonly dev: number; readonly ino: number; readonly nlink: number }, path: string) => Promise<void>;

/** How to open a file store. */
export interface FileStoreOptions {
  /** Checks the opened descriptor before anything else is done with it. */
  verify?: OpenedFileCheck | undefined;
  /** Open for reading only (the default). */
  readOnly?: boolean | undefined;
  /**
   * Create the file, emptying an existing one — only after `lock` and
   * `refuse` passed, so a file another open still reads is never cut.
   * {@link FileStore.created} tells whether this open made it.
   */
  create?: boolean | undefined;
  /** Create the file, failing when the name exists (O_EXCL; a symlink counts as existing). */
  exclusive?: boolean | undefined;
  /** Take qemu's image locks right after opening (see {@link FileStore.lock}). */
  lock?: LockRequest | undefined;
  /**
   * Files (`dev:ino`) that must not be opened for writing: a match fails as
   * qemu's write-lock conflict, also where OFD locks are unavailable.
   */
  refuse?: ReadonlySet<string> | undefined;
  /** Allow block and character devices (targets such as /dev/sdX); never FIFOs or sockets. */
  allowDevices?: boolean | undefined;
  /**
   * qemu's cache mode (default `writeback`): `none`/`directsync` open with
   * O_DIRECT (every request goes through aligned bounce buffers; needs the
   * native module; refused on file systems without O_DIRECT, as qemu does),
   * `writethrough`/`directsync` with O_DSYNC, and `unsafe` makes flush() a no-op.
   */
  cache?: CacheMode | undefined;
  /** The name the store goes by in messages and `map` (default: the path), e.g. an upload's for its inflated copy. */
  name?: string | undefined;
}

let bouncePool: BouncePool | undefined;

/**
 * A device's size: fstat says 0, so the native module seeks to its end (as
 * qemu's host_device driver does); without it a block device's size comes
 * from sysfs. Character devices (/dev/null, /dev/zero) are 0 bytes, as in qemu.
 */
async function deviceSize(fd: number, st: Stats): Promise<number> {
  const end = native?.deviceSize?.(fd) ?? -1;
  if (end >= 0) return end;
  if (!st.isBlockDevice()) return 0;
  // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
  const r = BigInt(st.rdev);
  const major = ((r >> 8n) & 0xfffn) | ((r >> 32n) & 0xfffff000n);
  const minor = (r & 0xffn) | ((r >> 12n) & 0xffffff00n);
  const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8').catch(() => '0');
  return Number(sectors.trim()) * 512;
}

/** The O_DIRECT state of a freshly opened direct file. */
async function directIo(fh: FdHandle, name: string, isDevice: boolean): Promise<DirectIo> {
  if (!native) throw new IoError('direct I/O needs the native module');
  const ops = native;
  bouncePool ??= new BouncePool((size) => ops.alignedBuffer(size));
  const reported = ops.directAlignment(fh.fd);
  // The file system's alignment when it reports one (statx DIOALIGN, a device's logical block size), else 4096.
  const align = reported >= 512 && reported <= MAX_BOUNCE && (reported & (reported - 1)) === 0 ? reported : DEFAULT_DIRECT_ALIGNMENT;
  const file = {
    read: async (b: Uint8Array, len: number, pos: number) => (await fh.read(b, 0, len, pos)).bytesRead,
    write: async (b: Uint8Array, len: number, pos: number) => (await fh.write(b, 0, len, pos)).bytesWritten,
    truncate: (size: number) => fh.truncate(size),
    size: async () => (await fh.stat()).size,
  };
  return new DirectIo(file, name, align, isDevice ? undefined : await file.size(), bouncePool);
}

/**
 * Opens with O_DIRECT; when the file system refuses it (EINVAL), fails with
 * qemu's wording. An exclusive open that fails so has already created the
 * file (the kernel checks O_DIRECT after creating it), so it is removed again.
 */
async function openDirect(path: string, flags: number, cache: CacheMode): Promise<FdHandle> {
  try {
    return await fsOpen(path, flags, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    let plain: FdHandle;
    try {
      plain = await fsOpen(path, flags & ~constants.O_DIRECT & ~constants.O_EXCL, 0o644);
    } catch {
      throw err;
    }
    await plain.close();
    const reason = 'filesystem does not support O_DIRECT';
    if ((flags & constants.O_EXCL) !== 0) await rm(path, { force: true }).catch(() => undefined);
    throw new UnsupportedError(`Could not open '${path}': ${reason}`, { file: path, cause: err, reason: 'cache-mode-unavailable', data: { cache, reason, directUnsupported: true } });
  }
}

/**
 * Opens `path`; with `create`, exclusively first, so the caller learns
 * whether this open made the file (a failed job removes only what it made).
 */
async function openFile(path: string, flags: number, cache: CacheMode, direct: boolean, options: FileStoreOptions): Promise<{ fh: FdHandle; created: boolean }> {
  const open = (f: number): Promise<FdHandle> => (direct ? openDirect(path, f, cache) : fsOpen(path, f, 0o644));
  if (!options.create && !options.exclusive) return { fh: await open(flags), created: false };
  try {
    return { fh: await open(flags | constants.O_CREAT | constants.O_EXCL), created: true };
  } catch (err) {
    if (options.exclusive || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { fh: await open(flags | constants.O_CREAT), created: false };
  }
}

const FILL_CHUNK = 1024 * 1024;
/** Written bytes between two early writeback starts of a writeback file. */
const EARLY_WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * A ByteStore over a local file, with positional reads and writes.
 *
 * Opening never blocks on a FIFO: the file is opened non-blocking and its
 * type checked before any I/O; FIFOs, sockets and directories are refused.
 */
export class FileStore implements ByteStore {
  readonly name: string;
  readonly readOnly: boolean;
  /** The cache mode the file was opened with. */
  readonly cache: CacheMode;
  /** This open created the file (it did not exist before; see {@link FileStoreOptions.create}). */
  readonly created: boolean;
  /** A block or character device (opened with `allowDevices`): its size is fixed. */
  readonly device: boolean;
  readonly #fh: FdHandle;
  readonly #direct: DirectIo | undefined;
  readonly #identity: StoreIdentity;
  #closed = false;
  #locked = false;
  /** Bytes written since the last early writeback (see {@link FileStore.write}). */
  #unsynced = 0;
  /** Buffered writes, one at a time. */
  readonly #writeLock = new AsyncMutex();
  #earlySync: Promise<void> | undefined;
  /**
   * Changes made (every writing call counts one) and the count the last flush covered: as qemu's
   * write_gen/flushed_gen, a flush with nothing new to make durable does not sync. A writable open
   * that changed nothing (a check that found nothing to repair) leaves the file's writeback alone.
   */
  #writeGen = 0;
  #flushedGen = 0;

  private constructor(name: string, fh: FdHandle, readOnly: boolean, identity: StoreIdentity, isDevice: boolean, cache: CacheMode, created: boolean, direct?: DirectIo) {
    this.name = name;
    this.cache = cache;
    this.created = created;
    this.#direct = direct;
    this.#fh = fh;
    this.readOnly = readOnly;
    this.#identity = identity;
    this.device = isDevice;
  }

  /**
   * Opens `path`.
   *
   * @throws {NotFoundError} ENOENT when it does not exist
   * @throws {UnsafeReferenceError} EUNSAFE for FIFOs, sockets, directories (and devices unless allowed)
   * @throws {UnsupportedError} EUNSUPPORTED for `none`/`directsync` without the native module or on a file system without O_DIRECT
   */
  static async open(path: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const readOnly = options.readOnly ?? true;
    const cache = options.cache ?? DEFAULT_CACHE_MODE;
    const { direct, dsync } = cacheSemantics(cache);
    if (direct && !native) {
      const reason = `cache mode '${cache}' needs direct I/O, which needs vdisk's native module (not built, or VDISK_NO_NATIVE is set)`;
      throw new UnsupportedError(`Could not open '${path}': ${reason}`, { file: path, reason: 'cache-mode-unavailable', data: { cache, reason } });
    }
    let flags = (readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
    if (dsync) flags |= constants.O_DSYNC;
    if (direct) flags |= constants.O_DIRECT;
    let fh: FdHandle;
    let created: boolean;
    try {
      ({ fh, created } = await openFile(path, flags, cache, direct, options));
    } catch (err) {
      // qemu's file driver words a failed create as such (a directory in the target's place, a missing parent).
      throw fsError(err, `Could not ${options.create ? 'create' : 'open'} '${path}'`, path);
    }
    try {
      const st = await fh.stat();
      const device = st.isBlockDevice() || st.isCharacterDevice();
      if (device && !options.allowDevices) throw new UnsafeReferenceError(`Could not open '${path}': it is a device, not a regular file`, { file: path });
      // qemu's file driver's words; a FIFO or socket is refused the same way (opened without blocking: qemu-img hangs on a FIFO).
      if (!st.isFile() && !device) throw new UnsafeReferenceError(`'file' driver requires '${path}' to be a regular file`, { file: path });
      await options.verify?.(fh.fd, st, path);
      const store = new FileStore(options.name ?? path, fh, readOnly, { dev: st.dev, ino: st.ino }, device, cache, created, direct ? await directIo(fh, path, device) : undefined);
      return await store.#prepare(options);
    } catch (err) {
      await fh.close();
      // An open that fails leaves the name as it found it.
      if (created) await rm(path, { force: true }).catch(() => undefined);
      throw fsError(err, `Could not open '${path}'`, path);
    }
  }

  /** Refusal and locks first, then emptying a created file: an error leaves the file as it was. */
  async #prepare(options: FileStoreOptions): Promise<FileStore> {
    const id = `${this.#identity.dev}:${this.#identity.ino}`;
    if (!this.readOnly && options.refuse?.has(id)) throw writeLockConflict(this.name);
    // A file this open made is nobody else's yet: its locks are taken where possible, never required.
    if (options.lock) await this.lock(this.created ? { ...options.lock, optional: true } : options.lock);
    try {
      if (options.create && !this.created) await this.truncate(0);
    } catch (err) {
      if (this.#locked) releaseImageLocks(this.#fh.fd);
      throw err;
    }
    return this;
  }

  identity(): StoreIdentity {
    return this.#identity;
  }

  async size(): Promise<number> {
    this.#check();
    if (this.device) return deviceSize(this.#fh.fd, await this.#fh.stat());
    if (this.#direct) return this.#direct.size;
    return (await this.#fh.stat()).size;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    this.#check();
    if (this.#direct) return this.#direct.read(offset, into);
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
    if (this.#direct) return this.#direct.write(offset, data);
    // One native request per write where the module has it: cheaper on the main thread than FdHandle.write.
    // The module lands its writes one at a time in the order they were made, as the lock below does,
    // but without a round trip through the main thread between one write and the next.
    const put = native?.writeAt;
    if (put && data.length > 0) {
      try {
        await put(this.#fh.fd, data, offset);
      } catch (err) {
        throw fsError(err, `Could not write '${this.name}' at offset ${(err as { offset?: number }).offset ?? offset}`, this.name);
      }
      this.#startEarlyWriteback(data.length);
      return;
    }
    // One buffered write at a time: the kernel serializes them on the inode lock anyway (ext4, xfs),
    // and several threads queued on it spin there, burning the cores the copy needs.
    await this.#writeLock.run(() => this.#writeAll(offset, data));
  }

  async #writeAll(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      try {
        const { bytesWritten } = await this.#fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      } catch (err) {
        throw fsError(err, `Could not write '${this.name}' at offset ${offset + done}`, this.name);
      }
    }
    this.#startEarlyWriteback(data.length);
  }

  /**
   * Long copies end with a flush that would otherwise wait for every dirty
   * page at once; starting writeback (sync_file_range, which does not wait)
   * every EARLY_WRITEBACK_BYTES lets the disk write while the copy still
   * runs, so that final flush waits only for the tail. Only a hint: errors
   * are ignored here and surface from the flush.
   */
  #startEarlyWriteback(bytes: number): void {
    const start = native?.startWriteback;
    if (!start || this.#earlySync) return;
    const { noFlush, dsync } = cacheSemantics(this.cache);
    if (noFlush || dsync) return;
    this.#unsynced += bytes;
    if (this.#unsynced < EARLY_WRITEBACK_BYTES) return;
    this.#unsynced = 0;
    this.#earlySync = start(this.#fh.fd, 0, 0).then(
      () => { this.#earlySync = undefined; },
      () => { this.#earlySync = undefined; },
    );
  }

  async truncate(size: number, exact = false): Promise<void> {
    this.#checkWritable();
    if (this.device) {
      // As qemu's host_device driver: a device keeps its size; a new image may be smaller, never larger.
      const current = await this.size();
      if (exact && size !== current) throw new UnsupportedError('Cannot resize device files', { file: this.name, errno: 95 });
      if (size > current) throw new InvalidArgumentError('Cannot grow device files', { file: this.name, errno: 22 });
      return;
    }
    if (this.#direct) return this.#direct.truncate(size);
    try {
      const fromEmpty = size > 0 && (await this.#fh.stat()).size === 0;
      await this.#fh.truncate(size);
      // As qemu's file driver does: a file grown from nothing gets its first block written, so
      // tools that look at the allocation (and qemu-img map) see the same file qemu-img makes.
      // Like qemu's allocate_first_block: one sector below 4 KiB, even where that lengthens the file.
      if (fromEmpty) {
        const n = size < FIRST_BLOCK ? 512 : FIRST_BLOCK;
        await this.#fh.write(new Uint8Array(n), 0, n, 0);
      }
    } catch (err) {
      throw fsError(err, `Could not resize '${this.name}'`, this.name);
    }
  }

  async flush(): Promise<void> {
    this.#check();
    if (this.readOnly || cacheSemantics(this.cache).noFlush) return;
    const gen = this.#writeGen;
    if (gen === this.#flushedGen) return;
    try {
      await this.#earlySync;
      await this.#fh.datasync();
      this.#flushedGen = gen;
    } catch (err) {
      // A device without a sync (/dev/null, a terminal) has nothing to make durable: qemu's create and convert go through.
      if (this.device && (err as NodeJS.ErrnoException).code === 'EINVAL') return;
      throw fsError(err, `Could not flush '${this.name}'`, this.name);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#locked) releaseImageLocks(this.#fh.fd);
    await this.#earlySync;
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
    // qemu's host_device driver preallocates nothing.
    if (this.device) throw new UnsupportedError(`Unsupported preallocation mode '${mode}'`, { file: this.name });
    if (mode === 'falloc' && native && length > 0) {
      try {
        const ops = native;
        const fromEmpty = offset === 0 && (await this.#fh.stat()).size === 0;
        await this.#resizing(() => ops.fallocate(this.#fh.fd, 0, offset, length));
        // qemu's file driver writes the first block of a file it allocates from nothing (see truncate).
        if (fromEmpty) await this.#fh.write(new Uint8Array(Math.min(length, FIRST_BLOCK)), 0, Math.min(length, FIRST_BLOCK), 0);
        return;
      } catch (err) {
        // A file system without fallocate gets zeros written below; a file that cannot grow (a size limit, a full disk) fails here.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EOPNOTSUPP' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw fsError(err, `Could not preallocate '${this.name}'`, this.name);
      }
    }
    const zeros = new Uint8Array(Math.min(FILL_CHUNK, length));
    for (let off = offset; off < offset + length; off += zeros.length) {
      const n = Math.min(zeros.length, offset + length - off);
      await this.write(off, n === zeros.length ? zeros : zeros.subarray(0, n));
    }
  }

  /** Data and hole runs from SEEK_DATA/SEEK_HOLE; undefined without the native module. A device is all data, as in qemu. */
  async extents(offset: number, length: number): Promise<readonly HostExtent[] | undefined> {
    this.#check();
    if (this.device) return length > 0 ? [{ offset, length, data: true }] : [];
    if (!native) return undefined;
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
    if (!native || this.device || length === 0) return length === 0;
    const ops = native;
    try {
      await this.#resizing(() => ops.fallocate(this.#fh.fd, unmap ? 1 : 2, offset, length));
      return true;
    } catch {
      return false;
    }
  }

  /** copy_file_range from another file store (copy offload, `convert -C`). */
  async copyFrom(source: ByteStore, sourceOffset: number, offset: number, length: number): Promise<boolean> {
    this.#checkWritable();
    // Direct stores copy through their bounce buffers instead (the caller reads and writes).
    if (!native || !(source instanceof FileStore) || this.#direct || source.#direct) return false;
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

  /** Reads and scans in one native request (see ByteStore.readRuns); not for O_DIRECT files. */
  async readRuns(offset: number, into: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined> {
    this.#check();
    if (!canCopyScan() || this.#direct) return undefined;
    return copyScan({ fd: this.#fh.fd, name: this.name }, offset, undefined, 0, into, into.length, scan);
  }

  /** Reads, scans and writes the data runs in one native request (see ByteStore.copyRuns). */
  async copyRuns(source: ByteStore, sourceOffset: number, offset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns | undefined> {
    this.#checkWritable();
    if (!canCopyScan() || !(source instanceof FileStore) || this.#direct || source.#direct) return undefined;
    source.#check();
    return this.#wrote(await copyScan({ fd: source.#fh.fd, name: source.name }, sourceOffset, { fd: this.#fh.fd, name: this.name }, offset, buffer, length, scan));
  }

  /** Reads and compares both files' ranges in one native request (see ByteStore.compareWith); not for O_DIRECT files. */
  compareWith(offset: number, other: ByteStore, otherOffset: number, length: number, scratch: Uint8Array, otherScratch: Uint8Array): Promise<number> | undefined {
    this.#check();
    const compareAt = native?.compareAt;
    if (!compareAt || !(other instanceof FileStore) || this.#direct || other.#direct) return undefined;
    other.#check();
    return compareAt(this.#fh.fd, offset, other.#fh.fd, otherOffset, length, scratch, otherScratch);
  }

  /** Scans `buffer` and writes its data runs in one native request (see ByteStore.writeRuns). */
  async writeRuns(offset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined> {
    this.#checkWritable();
    if (!canCopyScan() || this.#direct) return undefined;
    return this.#wrote(await scanWrite({ fd: this.#fh.fd, name: this.name }, offset, buffer, buffer.length, scan));
  }

  /** Counts the data runs a native request wrote towards early writeback; returns the runs. */
  #wrote(runs: SparseRuns): SparseRuns {
    this.#startEarlyWriteback(runs.reduce((n, r) => (r > 0 ? n + r : n), 0));
    return runs;
  }

  /**
   * qemu-compatible image locks. Without the native module a read goes on
   * unlocked and a write fails unless the request is `optional`.
   */
  async lock(request: LockRequest): Promise<void> {
    this.#check();
    if ((request.write || request.create) && this.readOnly) throw new IoError(`Cannot take write locks on read-only '${this.name}'`);
    this.#locked = acquireImageLocks(this.#fh.fd, this.name, request);
  }

  /** Drops the image locks {@link FileStore.lock} took; the file stays open. */
  async unlock(): Promise<void> {
    if (!this.#locked || this.#closed) return;
    this.#locked = false;
    releaseImageLocks(this.#fh.fd);
  }

  /** Runs a size-changing operation other than write/truncate; a direct store re-reads its size after it. */
  #resizing<T>(fn: () => Promise<T>): Promise<T> {
    return this.#direct ? this.#direct.resizing(fn) : fn();
  }

  #check(): void {
    if (this.#closed) throw new IoError(`File '${this.name}' is closed`, { file: this.name });
  }

  /** Every call that may change the file comes through here, and counts as a change to flush. */
  #checkWritable(): void {
    this.#check();
    if (this.readOnly) throw new IoError(`File '${this.name}' is open read-only`, { file: this.name });
    this.#writeGen++;
  }
}
