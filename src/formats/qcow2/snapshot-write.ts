/**
 * Internal snapshots: create, apply (goto) and delete (qcow2-snapshot.c).
 * Each runs on an image open for writing whose writer has been flushed,
 * and changes the on-disk structures in the crash-safe order: refcounts
 * are raised before anything points at the clusters, tables are written
 * before the header switches to them, and references are dropped last, so
 * an interrupted operation leaves at worst leaked clusters.
 */
import { CorruptImageError, NotFoundError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { clustersFor, growL1, writeBackMetadata, writeHeaderSize } from './l1-table.js';
import { HI_COPIED, l1EntriesFor } from './layout.js';
import { validateTable } from './open.js';
import type { Refcounts } from './refcount.js';
import { checkSaturation, updateSnapshotRefcount, type L1Table } from './snapshot-refcount.js';
import { entryBytesFor, writeSnapshotTable } from './snapshot-table.js';
import type { SnapshotEntry } from './snapshot.js';
import type { Qcow2State } from './state.js';

/** What a new snapshot records besides its name. */
export interface NewSnapshot {
  readonly name: string;
  readonly dateSec: number;
  readonly dateNsec: number;
  readonly vmClockNsec?: number | undefined;
  readonly icount?: number | undefined;
}

function refcountsOf(s: Qcow2State): Refcounts {
  if (!s.refcounts) throw new UnsupportedError('The image is open read-only', { errno: 1 });
  return s.refcounts;
}

function activeL1(s: Qcow2State): L1Table {
  return { view: s.l1, size: s.l1Size };
}

/** Reads a snapshot's L1 table into a buffer of at least `minEntries` entries (zero-padded). */
async function readSnapshotL1(s: Qcow2State, sn: SnapshotEntry, minEntries = 0): Promise<Uint8Array> {
  validateTable(s.g, sn.l1TableOffset, sn.l1Size, 8, LIMITS.qcow2MaxL1Bytes, 'Snapshot L1 table');
  const bytes = new Uint8Array(Math.max(sn.l1Size, minEntries) * 8);
  if (sn.l1Size) await s.store.read(sn.l1TableOffset, bytes.subarray(0, sn.l1Size * 8));
  return bytes;
}

/** The next free numeric ID (find_new_snapshot_id: largest + 1). */
function nextId(entries: readonly SnapshotEntry[]): string {
  let max = 0;
  for (const sn of entries) {
    const n = /^\d+/.exec(sn.id);
    if (n) max = Math.max(max, Number(n[0]));
  }
  return String(max + 1);
}

/**
 * Creates a snapshot of the active state: copies the L1 table, takes one
 * more reference on every cluster it reaches (clearing COPIED), then
 * appends the entry to a rewritten table.
 *
 * @throws {UnsupportedError} external data file (errno 95), too many snapshots, refcount saturation (errno 22)
 */
export async function createSnapshot(s: Qcow2State, info: NewSnapshot): Promise<SnapshotEntry> {
  const rc = refcountsOf(s);
  if (s.externalData) throw new UnsupportedError('Internal snapshots are not supported with an external data file', { errno: 95 });
  if (s.snapshots.length >= LIMITS.qcow2MaxSnapshots) throw new UnsupportedError('Too many snapshots', { errno: 27 });
  await checkSaturation(s, rc, activeL1(s));
  const l1Offset = s.l1Size ? await rc.allocate(clustersFor(s, s.l1Size * 8)) : 0;
  await rc.writeBack();
  await s.store.flush();
  if (s.l1Size) {
    await s.store.write(l1Offset, s.l1Bytes.slice(0, s.l1Size * 8));
    await s.store.flush();
  }
  const changed = await updateSnapshotRefcount(s, rc, activeL1(s), 1);
  await writeBackMetadata(s, rc, changed);
  const id = nextId(s.snapshots);
  const entry: SnapshotEntry = {
    l1TableOffset: l1Offset,
    l1Size: s.l1Size,
    id,
    name: info.name,
    dateSec: info.dateSec,
    dateNsec: info.dateNsec,
    vmClockNsec: info.vmClockNsec ?? 0,
    vmStateSize: 0,
    diskSize: s.header.size,
    icount: info.icount,
    entryBytes: entryBytesFor(id, info.name),
  };
  await writeSnapshotTable(s, rc, [...s.snapshots, entry]);
  return s.snapshots[s.snapshots.length - 1] ?? entry;
}

/**
 * Makes the active state a copy of snapshot `sn`: references on the
 * snapshot's clusters are taken first, the new active L1 (COPIED cleared,
 * so nothing shared can be written in place) is written, the old active
 * references are dropped, then COPIED flags are recomputed. The virtual
 * size becomes the snapshot's.
 */
export async function applySnapshot(s: Qcow2State, sn: SnapshotEntry): Promise<void> {
  const rc = refcountsOf(s);
  if (s.externalData) throw new UnsupportedError('Internal snapshots are not supported with an external data file', { errno: 95 });
  const size = sn.diskSize ?? s.header.size;
  if (l1EntriesFor(size, s.g) > sn.l1Size) throw new CorruptImageError('Snapshot L1 table is too small');
  await growL1(s, rc, sn.l1Size);
  const snBytes = await readSnapshotL1(s, sn, s.l1Size);
  const snL1: L1Table = { view: new DataView(snBytes.buffer), size: sn.l1Size };
  await checkSaturation(s, rc, snL1);
  await updateSnapshotRefcount(s, rc, snL1, 1);
  await writeBackMetadata(s, rc, new Set());
  for (let i = 0; i < sn.l1Size; i++) snL1.view.setUint32(i * 8, (snL1.view.getUint32(i * 8) & ~HI_COPIED) >>> 0);
  await s.store.write(s.header.l1TableOffset, snBytes);
  await s.store.flush();
  const old: L1Table = { view: new DataView(s.l1Bytes.slice().buffer), size: s.l1Size };
  s.l1Bytes.set(snBytes);
  await updateSnapshotRefcount(s, rc, old, -1);
  const changed = await updateSnapshotRefcount(s, rc, activeL1(s), 0);
  await writeBackMetadata(s, rc, changed);
  if (size !== s.header.size) await writeHeaderSize(s, size);
}

/**
 * Deletes snapshot `sn`: the table without it is written first, then its
 * references are dropped, its L1 table freed and the active COPIED flags
 * recomputed (clusters only it shared become writable in place again).
 */
export async function deleteSnapshot(s: Qcow2State, sn: SnapshotEntry): Promise<void> {
  const rc = refcountsOf(s);
  const snBytes = await readSnapshotL1(s, sn);
  await writeSnapshotTable(s, rc, s.snapshots.filter((x) => x !== sn));
  await updateSnapshotRefcount(s, rc, { view: new DataView(snBytes.buffer), size: sn.l1Size }, -1);
  if (sn.l1Size && sn.l1TableOffset) await rc.free(sn.l1TableOffset, clustersFor(s, sn.l1Size * 8));
  const changed = await updateSnapshotRefcount(s, rc, activeL1(s), 0);
  await writeBackMetadata(s, rc, changed);
}

/** Finds a snapshot: `id` and/or `name` must match (qemu's find_snapshot_by_id_and_name). */
export function findByRef(entries: readonly SnapshotEntry[], ref: { id?: string | undefined; name?: string | undefined }): SnapshotEntry | undefined {
  if (ref.id === undefined && ref.name === undefined) return undefined;
  return entries.find((sn) => (ref.id === undefined || sn.id === ref.id) && (ref.name === undefined || sn.name === ref.name));
}

/** The error for a snapshot that is not there. */
export function snapshotNotFound(what: string): NotFoundError {
  return new NotFoundError(`Snapshot '${what}' not found`, { data: { snapshot: what } });
}
