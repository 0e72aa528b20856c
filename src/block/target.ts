/**
 * The one place a job's output comes into being (create, convert, dd):
 * a new single-file regular target is written under a temporary name of
 * its own, created exclusively, and renamed over the target only when
 * complete, after the existing target's image lock was taken, so a file
 * another process writes is never replaced under it; multi-file images,
 * symlinks and devices are written in place, as qemu-img does. A failed job
 * removes every file it created and none that was there before. A ByteStore
 * target is the caller's: written in place, never closed, renamed or removed.
 * A URL names an existing NBD export: written in place as qemu's protocol
 * create leaves it (block/network-target.ts), never renamed or removed.
 */
import { constants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import type { ByteStore, LockingMode, LockRequest } from '../io/byte-store.js';
import type { CacheMode } from '../core/cache-mode.js';
import type { NetworkOptions } from '../io/network-options.js';
import { LockedError, UnsupportedError } from '../core/errors.js';
import { borrowStore } from '../io/borrowed-store.js';
import { fsError } from '../io/errno.js';
import { FileStore } from '../io/file-store.js';
import type { FdHandle } from '../io/fs-calls.js';
import { chmod, chown, lstat, open, rename, rm, stat } from '../io/fs-names.js';
import { acquireImageLocks, releaseImageLocks, writeLockConflict } from '../io/image-lock.js';
import { targetName, type ImageTarget, type OpenImageOptions } from './chain.js';
import { BlockDevice } from './device.js';
import { createOnNetwork, isNetworkTarget, NO_PROTOCOL_REQUEST, type ProtocolCreate } from './network-target.js';
import { localName, shownLocalName } from './protocol-name.js';
import { checkOutputSpec } from './target-check.js';

/**
 * What a job writes its output into: a path, or a ByteStore the caller
 * opened. A store is emptied and written in place; it stays the caller's
 * (the job never closes it, and a failed job leaves what it wrote there).
 */
export type OutputSpec = string | ByteStore;

/** How a target is written. */
export interface TargetOptions {
  /** The image consists of more files than its main one (vmdk extents, a qcow2 data file): written in place. */
  readonly multiFile?: boolean | undefined;
  /** Image locking of the target's files (see OpenImageOptions.locking; default true). */
  readonly locking?: LockingMode | undefined;
  /** Files (`dev:ino`) the job reads: a target that is one of them is refused as qemu's lock conflict. */
  readonly refuse?: ReadonlySet<string> | undefined;
  /** Headers, auth hook and signal for a target named by URL (an NBD export). */
  readonly network?: NetworkOptions | undefined;
}

/**
 * Targets this process is writing, by absolute name: a second job to the
 * same name fails as qemu-img's second writer would, also where OFD locks
 * are unavailable or the name does not exist yet.
 */
const claimed = new Set<string>();
/** Stores this process is writing as job outputs, for the same reason. */
const claimedStores = new WeakSet<ByteStore>();

/** `dev:ino` of the file `path` names (following symlinks), if it exists. */
async function identityOf(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * `dev:ino` of every file a job reads: the files its open devices consist
 * of (images, backing files, extents and data files) and the files named
 * as its sources (an unwrapped source is read from a private copy, yet
 * its own file is what a target may not be).
 */
export async function filesRead(devices: readonly BlockDevice[], names: readonly ImageTarget[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const layer of devices.flatMap((d) => d.layers)) {
    for (const store of layer.files) {
      const id = store.identity?.();
      if (id) ids.add(`${id.dev}:${id.ino}`);
    }
  }
  for (const name of names) {
    const id = typeof name === 'string' ? await identityOf(shownLocalName(name)) : undefined;
    if (id) ids.add(id);
  }
  return ids;
}

/**
 * Refuses a target that is one of the files a job reads, with the error
 * qemu-img gets from its image locks (the same whether or not OFD locks
 * are available here).
 */
async function refuseSameFile(target: OutputSpec, reading: ReadonlySet<string> | undefined): Promise<void> {
  if (!reading || reading.size === 0) return;
  const id = typeof target === 'string' ? await identityOf(target) : storeIdentity(target);
  if (id !== undefined && reading.has(id)) throw writeLockConflict(typeof target === 'string' ? target : target.name);
}

function storeIdentity(store: ByteStore): string | undefined {
  const id = store.identity?.();
  return id ? `${id.dev}:${id.ino}` : undefined;
}

/** After an existing target was opened: none of its files may be one the job reads. */
function refuseTargetFiles(dev: BlockDevice, reading: ReadonlySet<string>): void {
  for (const store of dev.top.files) {
    const id = store.identity?.();
    if (id && reading.has(`${id.dev}:${id.ino}`)) throw writeLockConflict(store.name);
  }
}

/** Runs a refusal of an existing target, worded as qemu-img's failed open of it. */
async function couldNotOpen(target: string, refusal: () => Promise<void> | void): Promise<void> {
  try {
    await refusal();
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    throw new LockedError(`Could not open '${target}': ${err.message}`, { file: target, hint: err.hint, cause: err });
  }
}

/**
 * Opens an existing image as a job's target, for writing in place
 * (convert's `-n`): refused, in the words of qemu-img's failed open, when
 * it or one of its files (extents, a data file) is one of `refuse`, the
 * files the job reads. A store is borrowed, as by any open.
 *
 * @throws {LockedError} EBUSY for a target the job reads or another process uses
 */
export async function openExistingTarget(spec: ImageTarget, options: OpenImageOptions & { readonly refuse: ReadonlySet<string> }): Promise<BlockDevice> {
  const name = targetName(spec);
  await couldNotOpen(name, () => (typeof spec === 'string' ? refuseSameFile(spec, options.refuse) : undefined));
  const dev = await BlockDevice.open(spec, { ...options, readOnly: false });
  try {
    await couldNotOpen(name, () => refuseTargetFiles(dev, options.refuse));
  } catch (err) {
    await dev.close().catch(() => undefined);
    throw err;
  }
  return dev;
}

/** qemu's locks while creating a file (raw_co_create): others may read and write, nobody may resize. */
function createLock(locking: LockingMode): LockRequest | undefined {
  return locking === false ? undefined : { write: true, create: true, shareAll: false, optional: locking === 'auto' };
}

/** A file held open with qemu's create-time locks, so nobody starts using it until it is replaced. */
interface HeldFile {
  readonly fh: FdHandle;
  readonly id: string;
}

/**
 * Takes the create-time image locks on the existing regular file `name`
 * (undefined when there is none, or when locking is off).
 *
 * @throws {LockedError} when another process uses it
 * @throws {UnsupportedError} when locks are required and unavailable
 */
async function holdExisting(name: string, locking: LockingMode): Promise<HeldFile | undefined> {
  const request = createLock(locking);
  if (!request) return undefined;
  let fh: FdHandle;
  try {
    fh = await open(name, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined; // gone (or a symlink now): nothing to protect; the rename decides
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return undefined;
    }
    const locked = acquireImageLocks(fh.fd, name, request);
    if (!locked) {
      await fh.close();
      return undefined;
    }
    return { fh, id: `${st.dev}:${st.ino}` };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function release(held: HeldFile | undefined): Promise<void> {
  if (!held) return;
  releaseImageLocks(held.fh.fd);
  await held.fh.close().catch(() => undefined);
}

/**
 * Gives the new file the permissions and owner of the file it will replace,
 * as qemu-img's in-place rewrite keeps them (a 0600 image stays 0600, one
 * owned by the hypervisor's user stays its). An owner the process may not
 * give (not root) is left as the process's own.
 */
async function keepAttributes(existing: string, temp: string): Promise<void> {
  const st = await stat(existing).catch(() => undefined);
  if (!st) return;
  await chown(temp, st.uid, st.gid).catch(() => undefined);
  // After chown, which clears set-id bits.
  await chmod(temp, st.mode & 0o7777).catch(() => undefined);
}

/** Symlinks, devices, other special files and hard-linked files are written in place (a rename would replace the link or fail). */
async function kindOf(name: string): Promise<'none' | 'file' | 'linked' | 'special'> {
  try {
    const st = await lstat(name);
    // A file with other names (hard links) is rewritten in place, as qemu-img rewrites it: a rename
    // would leave its other names on the old image.
    return st.isFile() ? (st.nlink > 1 ? 'linked' : 'file') : 'special';
  } catch {
    return 'none';
  }
}

/**
 * A job's output: {@link OutputTarget.openMain} claims the name and
 * creates the main file, the job writes it (and the files the image
 * names, reported through {@link OutputTarget.noteFile}), then either
 * {@link OutputTarget.commit} puts it in place or {@link OutputTarget.abort}
 * removes what the job created.
 */
export class OutputTarget {
  /** The target's name. */
  readonly name: string;
  readonly #options: TargetOptions;
  readonly #key: string;
  /** The caller's store, when the target is one. */
  readonly #store: ByteStore | undefined;
  /** The target is a URL: an NBD export written in place. */
  readonly #network: boolean;
  /** The file a local name names (`x` for `file:x`). */
  readonly #file: string;
  /** Why the name names nothing vdisk can write (an unknown protocol), reported when the job opens it. */
  readonly #nameError: unknown;
  #path: string | undefined;
  #main: FileStore | undefined;
  #inPlace = false;
  #claimed = false;
  #done = false;
  #held: HeldFile | undefined;
  /** Files this job created, in creation order (removed by abort when written in place). */
  readonly #created: string[] = [];
  /** A file that existed before the job is part of the target. */
  #touchesExisting = false;

  constructor(spec: OutputSpec, options: TargetOptions) {
    this.name = typeof spec === 'string' ? spec : spec.name;
    this.#store = typeof spec === 'string' ? undefined : spec;
    this.#options = options;
    this.#network = typeof spec === 'string' && isNetworkTarget(spec);
    let file = this.name;
    if (!this.#network && !this.#store) {
      try {
        file = localName(this.name).path;
      } catch (err) {
        this.#nameError = err;
      }
    }
    this.#file = file;
    this.#key = this.#network ? this.name : resolve(file);
  }

  /** Where the main file is written: a temporary name beside the target, or the target itself (a store: its name). */
  get path(): string {
    if (this.#path === undefined) throw new Error('OutputTarget.openMain has not run');
    return this.#path;
  }

  /** What the job opens to go on writing the image once created: the written path, or the caller's store. */
  get image(): string | ByteStore {
    return this.#store ?? this.path;
  }

  /** True when the target is written in place (multi-file images, symlinks, devices, stores, URLs). */
  get inPlace(): boolean {
    return this.#inPlace;
  }

  /**
   * How the job opens the target's files once created: a file only this job
   * knows needs no lock to be safe, so it is locked where possible.
   */
  get locking(): LockingMode {
    const mode = this.#options.locking ?? true;
    return mode !== false && !this.#touchesExisting ? 'auto' : mode;
  }

  /** True when the target is named by URL (an existing NBD export, written in place). */
  get network(): boolean {
    return this.#network;
  }

  /**
   * Claims the name, refuses a target the job reads, locks an existing
   * target that will be replaced, and creates the main file: exclusively
   * under a fresh temporary name, or in place with qemu's create locks. A
   * store is emptied and lent to the job (closing what this returns leaves
   * the caller's store open). A URL's export is opened as qemu's protocol
   * create opens it, `protocol` saying what that create is asked for.
   *
   * @throws {LockedError} when this process or another one uses the target
   * @throws {UnsupportedError} for a multi-file image into a store or an export
   */
  async openMain(cache: CacheMode | undefined, protocol: ProtocolCreate = NO_PROTOCOL_REQUEST): Promise<ByteStore> {
    if (this.#claimed || this.#done) throw new Error(`OutputTarget '${this.name}' opened twice`);
    if (this.#store) return this.#openStore(this.#store);
    if (claimed.has(this.#key)) throw writeLockConflict(this.name);
    claimed.add(this.#key);
    this.#claimed = true;
    if (this.#network) return this.#openNetwork(protocol);
    if (this.#nameError !== undefined) throw this.#nameError;
    const file = this.#file;
    // An empty name (``, `file:`) names no file: refused before a temporary file is made beside nothing.
    if (file === '') throw fsError(Object.assign(new Error('ENOENT'), { code: 'ENOENT' }), "Could not create ''", file);
    await refuseSameFile(file, this.#options.refuse);
    const kind = await kindOf(file);
    // A name ending in '/' can only name a directory: opened in place, it fails as qemu's create does
    // (`Is a directory`) instead of after the copy, at the rename of a temporary file beside it.
    this.#inPlace = this.#options.multiFile === true || kind === 'special' || kind === 'linked' || file.endsWith('/');
    const locking = this.#options.locking ?? true;
    if (this.#inPlace) {
      this.#path = file;
      // A device target is written in place as qemu-img writes it (FileStore still refuses FIFOs and sockets).
      const store = await FileStore.open(file, { readOnly: false, create: true, cache, lock: createLock(locking), refuse: this.#options.refuse, allowDevices: kind === 'special' });
      this.noteFile(file, store.created);
      this.#main = store;
      return store;
    }
    if (kind === 'file') this.#held = await holdExisting(file, locking);
    // Unique per job and created exclusively: two jobs never share (or truncate) one temporary file.
    // Math.random, not node:crypto: the name needs no secrecy (the exclusive create guards it), and
    // loading node:crypto costs every convert a visible share of its start-up.
    const temp = join(dirname(file), `.${basename(file)}.vdisk-${process.pid}-${Math.random().toString(36).slice(2, 12)}`);
    const store = await FileStore.open(temp, { readOnly: false, exclusive: true, cache, lock: createLock('auto') }).catch((err: unknown) => {
      // The temporary name is vdisk's own: a file system's refusal to make it (a missing or read-only
      // directory) is worded as qemu-img words its create of the target.
      const cause = (err as { cause?: unknown }).cause;
      throw (cause as NodeJS.ErrnoException | undefined)?.code ? fsError(cause, `Could not create '${file}'`, file) : err;
    });
    this.#path = temp;
    this.#main = store;
    return store;
  }

  async #openNetwork(protocol: ProtocolCreate): Promise<ByteStore> {
    this.#inPlace = true;
    this.#path = this.name;
    this.#touchesExisting = true;
    if (this.#options.multiFile) throw new UnsupportedError(`Cannot create an image of several files on '${this.name}'`, { file: this.name });
    return createOnNetwork(this.name, protocol, this.#options.network);
  }

  async #openStore(store: ByteStore): Promise<ByteStore> {
    if (claimedStores.has(store)) throw writeLockConflict(this.name);
    claimedStores.add(store);
    this.#claimed = true;
    this.#inPlace = true;
    this.#path = this.name;
    this.#touchesExisting = true;
    await refuseSameFile(store, this.#options.refuse);
    // The files such an image names would have to be found beside a store, which has no directory.
    if (this.#options.multiFile) throw new UnsupportedError(`Cannot create an image of several files in the store '${this.name}'`);
    // As a file target is emptied first, so that what the image does not write reads as zeros.
    await store.truncate(0);
    return borrowStore(store);
  }

  /**
   * Swaps the create-time lock of an in-place main file for the one qemu's
   * format create holds while it writes the image (qcow2_co_create's
   * blk_co_new_with_bs: write and resize, sharing everything), so a data
   * file that is the image itself conflicts as it does in qemu.
   */
  async holdForFormat(): Promise<void> {
    const locking = this.#options.locking ?? true;
    const store = this.#main;
    if (!this.#inPlace || locking === false || !store) return;
    await store.unlock();
    // A file this job just made is nobody else's yet: where locks cannot be taken it needs none (as at its creation).
    await store.lock({ write: true, shareAll: true, optional: locking === 'auto' || store.created });
  }

  /** Records a file opened for the target (`created`: this job made it). */
  noteFile(path: string, created: boolean): void {
    if (created) this.#created.push(path);
    else this.#touchesExisting = true;
  }

  /**
   * Whether a new image written here reads as zeros where it writes
   * nothing (qemu's bdrv_has_zero_init): a regular file or an emptied
   * store does, a device does not.
   */
  async readsAsZeros(): Promise<boolean> {
    if (this.#store) return true;
    // An NBD export keeps what it held (qemu's nbd driver has no has_zero_init).
    if (this.#network) return false;
    return stat(this.#file).then(
      (st) => st.isFile(),
      () => true,
    );
  }

  /**
   * Puts the finished target in place: renames the temporary file over the
   * target after locking whatever file has the name now. The job's own
   * opens of the target must be closed.
   *
   * @throws {LockedError} when another process started using the target meanwhile
   * @throws {IoError} when the rename fails
   */
  async commit(): Promise<void> {
    if (!this.#claimed || this.#done) throw new Error(`OutputTarget '${this.name}' is not open`);
    if (!this.#inPlace) {
      const file = this.#file;
      const now = await identityOf(file);
      if (now !== undefined && now !== this.#held?.id && (await kindOf(file)) === 'file') {
        const previous = this.#held;
        this.#held = await holdExisting(file, this.#options.locking ?? true);
        await release(previous);
      }
      // Only now: a read-only mode on the temporary file would refuse the job's own reopens.
      if (now !== undefined) await keepAttributes(file, this.path);
      try {
        await rename(this.path, file);
      } catch (err) {
        throw fsError(err, `Could not rename '${this.path}' to '${file}'`, file);
      }
    }
    this.#done = true;
    await this.#finish();
  }

  /**
   * Removes what the job created (the temporary file, or the files of an
   * in-place target that did not exist before) and releases the target.
   * Never throws; does nothing after {@link OutputTarget.commit}. A store
   * keeps what was written into it.
   */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.#path !== undefined && !this.#inPlace) await rm(this.#path, { force: true }).catch(() => undefined);
    for (const file of this.#created.reverse()) await rm(file, { force: true }).catch(() => undefined);
    await this.#finish();
  }

  async #finish(): Promise<void> {
    await release(this.#held);
    this.#held = undefined;
    if (!this.#claimed) return;
    if (this.#store) claimedStores.delete(this.#store);
    else claimed.delete(this.#key);
  }
}

/** A target named `spec` (or the caller's store); nothing happens until {@link OutputTarget.openMain}. */
export function prepareTarget(spec: OutputSpec, options: TargetOptions = {}): OutputTarget {
  checkOutputSpec(spec);
  return new OutputTarget(spec, options);
}
