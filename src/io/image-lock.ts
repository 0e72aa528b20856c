/**
 * qemu's image locking, so vdisk and qemu see each other's locks: each open
 * holds shared OFD locks on byte 100+p for every permission p it uses and
 * on byte 200+p for every permission it refuses to share. A lock conflicts
 * when someone else holds the matching byte of the other group.
 */
import { LockedError, UnsupportedError } from '../core/errors.js';
import type { LockRequest } from './byte-store.js';
import { native } from './native.js';

const PERM_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'] as const;
const CONSISTENT_READ = 0;
const WRITE = 1;
const RESIZE = 3;
const PERM_BASE = 100;
const SHARED_BASE = 200;

/**
 * The permissions an open uses and the ones it does not share, as qemu-img
 * sets them (bdrv_default_perms): a metadata file never shares writing or
 * resizing; a data-only file (extent, data file) shares writing; the file
 * of a raw image passes qemu-img's share-everything through — except for
 * convert's sources (`noShare`), which share neither.
 */
function lockPlan(request: LockRequest): { perms: number[]; unshared: number[] } {
  if (request.create) return { perms: [WRITE, RESIZE], unshared: [RESIZE] };
  const perms = request.write ? [CONSISTENT_READ, WRITE, RESIZE] : [CONSISTENT_READ];
  if (request.shareAll) return { perms, unshared: [] };
  const role = request.role ?? 'metadata';
  if (role === 'metadata' || request.noShare) return { perms, unshared: [WRITE, RESIZE] };
  return { perms, unshared: role === 'data' ? [RESIZE] : [] };
}

function conflict(what: string, name: string): LockedError {
  return new LockedError(`Failed to get ${what} lock`, { file: name, hint: `Is another process using the image [${name}]?` });
}

/** qemu's error for a write open of a file someone else reads without sharing writes. */
export function writeLockConflict(name: string): LockedError {
  return conflict(`"${PERM_NAMES[WRITE]}"`, name);
}

/**
 * The refusal of a writable open where image locks cannot be taken: another
 * process (qemu-nbd, a VM) could be writing the file and neither side would
 * know. Node has no portable fcntl/flock, so locks need the native module.
 */
function lockingUnavailable(name: string): UnsupportedError {
  const reason = "image locking is unavailable (vdisk's native module is not built, or VDISK_NO_NATIVE is set)";
  return new UnsupportedError(`Failed to lock '${name}': ${reason}`, {
    file: name,
    hint: 'Write without image locks only if nothing else can use the image: locking: false (or file.locking=off).',
    reason: 'locking-unavailable',
    data: { reason },
  });
}

/**
 * Takes the locks on `fd`. Returns false when native locking is not
 * available and the request may go without (reads, `optional`); throws
 * UnsupportedError for a write that may not, LockedError on a conflict.
 */
export function acquireImageLocks(fd: number, name: string, request: LockRequest): boolean {
  if (!native) {
    if ((request.write || request.create) && !request.optional) throw lockingUnavailable(name);
    return false;
  }
  const { perms, unshared } = lockPlan(request);
  for (const p of perms) native.setLock(fd, PERM_BASE + p, 1, 1);
  for (const u of unshared) native.setLock(fd, SHARED_BASE + u, 1, 1);
  for (const p of perms) {
    if (native.getLock(fd, SHARED_BASE + p, 1, 2) !== 0) {
      releaseImageLocks(fd);
      throw conflict(`"${PERM_NAMES[p]}"`, name);
    }
  }
  for (const u of unshared) {
    if (native.getLock(fd, PERM_BASE + u, 1, 2) !== 0) {
      releaseImageLocks(fd);
      throw conflict(`shared "${PERM_NAMES[u]}"`, name);
    }
  }
  return true;
}

/** Drops every image lock held through `fd`. */
export function releaseImageLocks(fd: number): void {
  native?.setLock(fd, PERM_BASE, SHARED_BASE + 100 - PERM_BASE, 0);
}
