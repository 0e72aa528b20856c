/**
 * The capability groups of a device's top image (snapshots, persistent
 * bitmaps) as jobs see them: the driver's own objects with every call that
 * changes the image run under the device's write lock, so they never
 * interleave with guest writes or each other.
 */
import type { AsyncMutex } from '../core/mutex.js';
import type { ImageBitmaps, NewSnapshotRequest, PersistentBitmapInfo, SnapshotInfo, SnapshotOps, SnapshotRef } from '../formats/driver.js';

/** Runs `fn` of `target` under `lock`, or leaves it absent when `target` lacks it. */
function locked<A extends unknown[], R>(lock: AsyncMutex, fn: ((...args: A) => Promise<R>) | undefined, self: object): ((...args: A) => Promise<R>) | undefined {
  if (!fn) return undefined;
  return (...args: A) => lock.run(() => fn.apply(self, args));
}

/** `ops` with its mutators serialized by `lock`; `list` and `open` pass through. */
export function lockedSnapshots(ops: SnapshotOps, lock: AsyncMutex): SnapshotOps {
  const create = locked<[NewSnapshotRequest], SnapshotInfo>(lock, ops.create, ops);
  const apply = locked<[string], void>(lock, ops.apply, ops);
  const del = locked<[SnapshotRef], SnapshotInfo>(lock, ops.delete, ops);
  return {
    list: () => ops.list(),
    open: (ref) => ops.open(ref),
    ...(create ? { create } : {}),
    ...(apply ? { apply } : {}),
    ...(del ? { delete: del } : {}),
  };
}

/** `bitmaps` with reads and mutators serialized by `lock` (enabled bitmaps change with every guest write). */
export function lockedBitmaps(bitmaps: ImageBitmaps, lock: AsyncMutex): ImageBitmaps {
  const add = locked<[string, { granularity?: number | undefined; enabled?: boolean | undefined }], void>(lock, bitmaps.add, bitmaps);
  const remove = locked<[string], void>(lock, bitmaps.remove, bitmaps);
  const clear = locked<[string], void>(lock, bitmaps.clear, bitmaps);
  const setEnabled = locked<[string, boolean], void>(lock, bitmaps.setEnabled, bitmaps);
  const merge = locked<[string, Uint8Array, number], void>(lock, bitmaps.merge, bitmaps);
  const imp = locked<[PersistentBitmapInfo, Uint8Array], void>(lock, bitmaps.import, bitmaps);
  return {
    get supported() {
      return bitmaps.supported;
    },
    list: () => bitmaps.list(),
    read: (name) => lock.run(() => bitmaps.read(name)),
    ...(add ? { add } : {}),
    ...(remove ? { remove } : {}),
    ...(clear ? { clear } : {}),
    ...(setEnabled ? { setEnabled } : {}),
    ...(merge ? { merge } : {}),
    ...(imp ? { import: imp } : {}),
  };
}
