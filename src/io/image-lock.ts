/**
 * qemu's image locking, so vdisk and qemu see each other's locks: each open
 * holds shared OFD locks on byte 100+p for every permission p it uses and
 * on byte 200+p for every permission it refuses to share. A lock conflicts
 * when someone else holds the matching byte of the other group.
 */
import { LockedError } from '../core/errors.js';
import type { LockRequest } from './byte-store.js';
import { native } from './native.js';

const PERM_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'] as const;
const CONSISTENT_READ = 0;
const WRITE = 1;
const WRITE_UNCHANGED = 2;
const RESIZE = 3;
const PERM_BASE = 100;
const SHARED_BASE = 200;

/** The permissions an open uses and the ones it does not share, as qemu-img sets them. */
export function lockPlan(request: LockRequest): { perms: number[]; unshared: number[] } {
  const perms = request.write ? [CONSISTENT_READ, WRITE, RESIZE] : [CONSISTENT_READ];
  if (request.shareAll) return { perms, unshared: [] };
  const shared = [CONSISTENT_READ, WRITE_UNCHANGED];
  return { perms, unshared: [CONSISTENT_READ, WRITE, WRITE_UNCHANGED, RESIZE].filter((p) => !shared.includes(p)) };
}

/**
 * Takes the locks on `fd`. Returns false when native locking is not
 * available (the caller may warn); throws LockedError on a conflict.
 */
export function acquireImageLocks(fd: number, name: string, request: LockRequest): boolean {
  if (!native) return false;
  const { perms, unshared } = lockPlan(request);
  for (const p of perms) native.setLock(fd, PERM_BASE + p, 1, 1);
  for (const u of unshared) native.setLock(fd, SHARED_BASE + u, 1, 1);
  const hint = `Is another process using the image [${name}]?`;
  for (const p of perms) {
    if (native.getLock(fd, SHARED_BASE + p, 1, 2) !== 0) {
      releaseImageLocks(fd);
      throw new LockedError(`Failed to get "${PERM_NAMES[p]}" lock`, { file: name, hint });
    }
  }
  for (const u of unshared) {
    if (native.getLock(fd, PERM_BASE + u, 1, 2) !== 0) {
      releaseImageLocks(fd);
      throw new LockedError(`Failed to get shared "${PERM_NAMES[u]}" lock`, { file: name, hint });
    }
  }
  return true;
}

/** Drops every image lock held through `fd`. */
export function releaseImageLocks(fd: number): void {
  native?.setLock(fd, PERM_BASE, SHARED_BASE + 100 - PERM_BASE, 0);
}
