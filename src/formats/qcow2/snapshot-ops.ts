/**
 * The qcow2 SnapshotOps capability: list, create, apply, delete, open.
 * Mutators flush the writer first (so its queued metadata lands before the
 * snapshot code reads the tables) and make it rebuild its metadata map
 * afterwards (tables moved, clusters were freed).
 */
import { NotFoundError, UnsupportedError } from '../../core/errors.js';
import type { FormatImage, NewSnapshotRequest, SnapshotInfo, SnapshotOps, SnapshotRef } from '../driver.js';
import { discardingSnapshotFrees } from './discard.js';
import type { Qcow2Image } from './image.js';
import { snapshotInfos, type SnapshotEntry } from './snapshot.js';
import { applySnapshot, createSnapshot, deleteSnapshot, findByRef, snapshotNotFound } from './snapshot-write.js';
import { Qcow2Writer } from './write.js';

function infoOf(sn: SnapshotEntry): SnapshotInfo {
  return snapshotInfos([sn])[0] as SnapshotInfo;
}

/**
 * Runs `fn` with the writer flushed before and its metadata map rebuilt
 * after; the space it frees goes back to the file system, as qemu's
 * snapshot discards do.
 */
async function mutate<T>(image: Qcow2Image, fn: () => Promise<T>): Promise<T> {
  await image.flush();
  const s = image.state;
  try {
    return s.refcounts ? await discardingSnapshotFrees(s, s.refcounts, fn) : await fn();
  } finally {
    const w = image.writer;
    if (w instanceof Qcow2Writer) w.resetMetadata();
  }
}

/** Builds the snapshot capability of `image` (mutators only when it is writable). */
export function qcow2SnapshotOps(image: Qcow2Image): SnapshotOps {
  const s = () => image.state;
  const ops: SnapshotOps = {
    list: () => snapshotInfos(s().snapshots),
    async open(ref: SnapshotRef): Promise<FormatImage> {
      const sn = findByRef(s().snapshots, ref);
      if (!sn) throw new NotFoundError("Failed to load snapshot: Can't find snapshot", { data: { snapshot: ref.id ?? ref.name } });
      return image.openSnapshot(sn.id);
    },
  };
  if (!image.writer) return ops;
  return {
    ...ops,
    create: (request: NewSnapshotRequest) =>
      mutate(image, async () => {
        const nowUs = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
        const dateSec = request.dateSec ?? Number(nowUs / 1000000n);
        const dateNsec = request.dateNsec ?? Number(nowUs % 1000000n) * 1000;
        return infoOf(await createSnapshot(s(), { name: request.name, dateSec, dateNsec, icount: 0 }));
      }),
    apply: (idOrName: string) =>
      mutate(image, async () => {
        // qcow2_snapshot_goto refuses a data file before it looks for the snapshot.
        if (s().externalData) throw new UnsupportedError('Failed to load snapshot: Operation not supported', { errno: 95 });
        const sn = findByRef(s().snapshots, { id: idOrName }) ?? findByRef(s().snapshots, { name: idOrName });
        if (!sn) throw snapshotNotFound(idOrName);
        await applySnapshot(s(), sn);
      }),
    delete: (ref: SnapshotRef) =>
      mutate(image, async () => {
        const sn = findByRef(s().snapshots, ref);
        if (!sn) throw snapshotNotFound(ref.name ?? ref.id ?? '');
        await deleteSnapshot(s(), sn);
        return infoOf(sn);
      }),
  };
}
