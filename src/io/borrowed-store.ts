/**
 * A store the caller opened stays the caller's: an open that is handed a
 * ByteStore uses it through a loan, so that closing the image (or failing
 * to open it) ends the loan instead of closing the caller's store.
 */
import { IoError } from '../core/errors.js';
import type { ByteStore, LockRequest } from './byte-store.js';
import type { Mutable } from '../core/mutable.js';

/** Each loan's view and the store it stands for. */
const loans = new WeakMap<ByteStore, ByteStore>();

/**
 * The store a loan's view stands for (the store itself when it is no view):
 * native paths between two stores (copyRuns, compareWith, copyFrom) need
 * the stores themselves to see both are files.
 */
export function lentStore(store: ByteStore): ByteStore {
  return loans.get(store) ?? store;
}

/**
 * A view of `store` that passes every call through, except `close()`: that
 * flushes nothing more than the image's own close did, releases the image
 * locks taken through the view and leaves `store` open. After it, calls on
 * the view fail as on a closed store; the caller's store is untouched.
 */
export function borrowStore(store: ByteStore): ByteStore {
  let closed = false;
  let locked = false;
  const live = (): ByteStore => {
    if (closed) throw new IoError(`File '${store.name}' is closed`, { file: store.name });
    return store;
  };
  const view: Mutable<ByteStore> = {
    name: store.name,
    readOnly: store.readOnly,
    size: async () => live().size(),
    read: async (offset, into) => live().read(offset, into),
    write: async (offset, data) => live().write(offset, data),
    truncate: async (size) => live().truncate(size),
    flush: async () => live().flush(),
    async close() {
      if (closed) return;
      closed = true;
      if (locked) await store.unlock?.();
    },
  };
  // Optional capabilities exist on the view only where the store has them: callers test for them.
  if (store.allocatedSize) view.allocatedSize = async () => live().allocatedSize?.();
  if (store.identity) view.identity = () => store.identity?.();
  if (store.preallocate) view.preallocate = async (offset, length, mode) => live().preallocate?.(offset, length, mode);
  if (store.extents) view.extents = async (offset, length) => live().extents?.(offset, length);
  if (store.zeroRange) view.zeroRange = async (offset, length, unmap) => (await live().zeroRange?.(offset, length, unmap)) ?? false;
  if (store.device !== undefined) view.device = store.device;
  if (store.copyFrom) view.copyFrom = async (source, so, offset, length) => (await live().copyFrom?.(lentStore(source), so, offset, length)) ?? false;
  // The native fast paths too: an image opened on a caller's file store copies and compares as one opened by name.
  if (store.readRuns) view.readRuns = async (offset, into, scan) => live().readRuns?.(offset, into, scan);
  if (store.copyRuns) view.copyRuns = async (source, so, offset, buffer, length, scan) => live().copyRuns?.(lentStore(source), so, offset, buffer, length, scan);
  if (store.writeRuns) view.writeRuns = async (offset, buffer, scan) => live().writeRuns?.(offset, buffer, scan);
  if (store.compareWith) view.compareWith = (offset, other, oo, length, scratch, os) => live().compareWith?.(offset, lentStore(other), oo, length, scratch, os);
  if (store.lock) {
    view.lock = async (request: LockRequest) => {
      await live().lock?.(request);
      locked = true;
    };
  }
  loans.set(view, store);
  return view;
}
