/**
 * Writing the internal snapshot table (qcow2_write_snapshots): entries
 * serialized with QEMU's 24 bytes of extra data (plus any unknown extra
 * data kept from the old table), written to new clusters, flushed, then the
 * header's nb_snapshots and snapshots_offset switched in one write, then
 * the old table freed. A crash at any point leaves the old or the new
 * table, never a mix (at worst leaked clusters).
 */
import { encodeName } from '../../core/byte-names.js';
import { UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { HEADER_FIELD } from './header.js';
import { clustersFor } from './l1-table.js';
import type { Refcounts } from './refcount.js';
import type { SnapshotEntry } from './snapshot.js';
import type { Qcow2State } from './state.js';

const ENTRY_HEADER = 40;
const EXTRA = 24;

/** Bytes one entry takes in the table (padding included). */
export function entryBytesFor(id: string, name: string, unknownExtra = 0): number {
  return Math.ceil((ENTRY_HEADER + EXTRA + unknownExtra + encodeName(id).length + encodeName(name).length) / 8) * 8;
}

/** Serializes `entries` (pure), without the last entry's padding. `unknown` holds extra-data bytes past QEMU's 24 to keep, by entry. */
function serializeSnapshotTable(
  entries: readonly SnapshotEntry[],
  currentSize: number,
  unknown: ReadonlyMap<SnapshotEntry, Uint8Array> = new Map(),
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  let end = 0;
  for (const sn of entries) {
    const id = encodeName(sn.id);
    const name = encodeName(sn.name);
    if (id.length > 0xffff || name.length > 0xffff) throw new UnsupportedError('Snapshot ID or name too long', { errno: 22 });
    const more = unknown.get(sn) ?? new Uint8Array(0);
    const extra = EXTRA + more.length;
    const len = Math.ceil((ENTRY_HEADER + extra + id.length + name.length) / 8) * 8;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(sn.l1TableOffset));
    v.setUint32(8, sn.l1Size);
    v.setUint16(12, id.length);
    v.setUint16(14, name.length);
    v.setUint32(16, sn.dateSec >>> 0);
    v.setUint32(20, sn.dateNsec >>> 0);
    v.setBigUint64(24, BigInt(sn.vmClockNsec));
    v.setUint32(32, sn.vmStateSize % 2 ** 32);
    v.setUint32(36, extra);
    v.setBigUint64(40, BigInt(sn.vmStateSize));
    v.setBigUint64(48, BigInt(sn.diskSize ?? currentSize));
    v.setBigUint64(56, sn.icount === undefined ? 0xffffffffffffffffn : BigInt(sn.icount));
    b.set(more, ENTRY_HEADER + EXTRA);
    b.set(id, ENTRY_HEADER + extra);
    b.set(name, ENTRY_HEADER + extra + id.length);
    parts.push(b);
    end = total + ENTRY_HEADER + extra + id.length + name.length;
    total += len;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  // Each entry starts 8-aligned, but the table ends with its last entry's name, as QEMU writes it.
  return out.subarray(0, end);
}

/** Extra-data bytes past QEMU's 24 in the current on-disk table, by entry (kept on rewrite, as QEMU does). */
async function unknownExtras(s: Qcow2State): Promise<Map<SnapshotEntry, Uint8Array>> {
  const out = new Map<SnapshotEntry, Uint8Array>();
  let pos = s.header.snapshotsOffset;
  for (const sn of s.snapshots) {
    const head = new Uint8Array(ENTRY_HEADER);
    await s.store.read(pos, head);
    const extra = new DataView(head.buffer).getUint32(36);
    if (extra > EXTRA && extra <= LIMITS.qcow2MaxSnapshotExtraData) {
      const more = new Uint8Array(extra - EXTRA);
      await s.store.read(pos + ENTRY_HEADER + EXTRA, more);
      out.set(sn, more);
    }
    pos += sn.entryBytes;
  }
  return out;
}

/**
 * Replaces the snapshot table with `entries` (crash-safe, see the file
 * comment) and updates the in-memory header and list.
 *
 * @throws {UnsupportedError} when the table would exceed QEMU's limits
 */
export async function writeSnapshotTable(s: Qcow2State, rc: Refcounts, entries: readonly SnapshotEntry[]): Promise<void> {
  if (entries.length > LIMITS.qcow2MaxSnapshots) throw new UnsupportedError('Too many snapshots', { errno: 27 });
  const unknown = await unknownExtras(s);
  const bytes = serializeSnapshotTable(entries, s.header.size, unknown);
  if (bytes.length > LIMITS.qcow2MaxSnapshotTableBytes) throw new UnsupportedError('Snapshot table too large', { errno: 27 });
  const offset = bytes.length ? await rc.allocate(clustersFor(s, bytes.length)) : 0;
  await rc.writeBack();
  await s.store.flush();
  if (bytes.length) {
    await s.store.write(offset, bytes);
    await s.store.flush();
  }
  const head = new Uint8Array(12);
  const hv = new DataView(head.buffer);
  hv.setUint32(0, entries.length);
  hv.setBigUint64(4, BigInt(offset));
  await s.store.write(HEADER_FIELD.nbSnapshots, head);
  await s.store.flush();
  const oldOffset = s.header.snapshotsOffset;
  const oldBytes = s.snapshots.reduce((n, sn) => n + sn.entryBytes, 0);
  s.header.nbSnapshots = entries.length;
  s.header.snapshotsOffset = offset;
  // Re-read lengths: entryBytes must describe the table as written.
  s.snapshots = entries.map((sn) => ({
    ...sn,
    entryBytes: entryBytesFor(sn.id, sn.name, unknown.get(sn)?.length ?? 0),
    diskSize: sn.diskSize ?? s.header.size,
  }));
  if (oldBytes > 0 && oldOffset !== 0) await rc.free(oldOffset, clustersFor(s, oldBytes));
  await rc.writeBack();
  await s.store.flush();
}
