/**
 * The internal snapshot table (qcow2-snapshot.c): read, bounds-checked, into
 * entries for `info` and for opening a snapshot's L1 table read-only.
 */
import { decodeName } from '../../core/byte-names.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { SnapshotInfo } from '../driver.js';

/** One snapshot table entry. */
export interface SnapshotEntry {
  readonly l1TableOffset: number;
  readonly l1Size: number;
  readonly id: string;
  readonly name: string;
  readonly dateSec: number;
  readonly dateNsec: number;
  readonly vmClockNsec: number;
  readonly vmStateSize: number;
  /** Guest size when the snapshot was taken (extra data), else undefined. */
  readonly diskSize: number | undefined;
  readonly icount: number | undefined;
  /** Bytes the entry takes in the table (padding included). */
  readonly entryBytes: number;
}

const ENTRY_HEADER = 40;

/**
 * QEMU keeps ids and names as C strings: a NUL ends them (zeros read past the end of a truncated table).
 * Bytes that are not UTF-8 are kept (escaped), so a rewritten table gives them back as they were.
 */
function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return decodeName(nul < 0 ? b : b.subarray(0, nul));
}

function safe(v: bigint, what: string, offset: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${what} in snapshot table entry is out of range`, { offset });
  return Number(v);
}

/**
 * Reads `count` entries at `offset`.
 *
 * @throws {UnsupportedError} "Snapshot table too large" (EFBIG); {@link CorruptImageError} bad entries
 */
export async function readSnapshotTable(store: ByteStore, offset: number, count: number): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  let pos = offset;
  const fileSize = await store.size();
  for (let i = 0; i < count; i++) {
    if (pos - offset > LIMITS.qcow2MaxSnapshotTableBytes) throw new UnsupportedError('Snapshot table too large', { offset, errno: 27 });
    // Past the end of the file the entry reads as zeros (QEMU's block layer
    // zero-fills short reads), so a truncated table still opens and
    // `check` reports its entries as incomplete; skip the pointless reads.
    const head = new Uint8Array(ENTRY_HEADER);
    if (pos < fileSize) await store.read(pos, head);
    const v = new DataView(head.buffer);
    const extraSize = v.getUint32(36);
    if (extraSize > LIMITS.qcow2MaxSnapshotExtraData) {
      throw new CorruptImageError(`Too much extra metadata in snapshot table entry ${i}`, { offset: pos });
    }
    const idLen = v.getUint16(12);
    const nameLen = v.getUint16(14);
    const rest = new Uint8Array(extraSize + idLen + nameLen);
    if (pos + ENTRY_HEADER < fileSize) await store.read(pos + ENTRY_HEADER, rest);
    const ev = new DataView(rest.buffer);
    const vmState32 = v.getUint32(32);
    out.push({
      l1TableOffset: safe(v.getBigUint64(0), 'L1 table offset', pos),
      l1Size: v.getUint32(8),
      id: cString(rest.subarray(extraSize, extraSize + idLen)),
      name: cString(rest.subarray(extraSize + idLen)),
      dateSec: v.getUint32(16),
      dateNsec: v.getUint32(20),
      vmClockNsec: safe(v.getBigUint64(24), 'VM clock', pos),
      vmStateSize: extraSize >= 8 ? safe(ev.getBigUint64(0), 'VM state size', pos) : vmState32,
      diskSize: extraSize >= 16 ? safe(ev.getBigUint64(8), 'Disk size', pos) : undefined,
      entryBytes: Math.ceil((ENTRY_HEADER + rest.length) / 8) * 8,
      icount: extraSize >= 24 && ev.getBigUint64(16) !== 0xffffffffffffffffn ? safe(ev.getBigUint64(16), 'icount', pos) : undefined,
    });
    pos += Math.ceil((ENTRY_HEADER + rest.length) / 8) * 8;
  }
  return out;
}

/** Snapshot entries as `info` reports them. */
export function snapshotInfos(entries: readonly SnapshotEntry[]): SnapshotInfo[] {
  return entries.map((s) => ({
    id: s.id,
    name: s.name,
    vmStateSize: s.vmStateSize,
    dateSec: s.dateSec,
    dateNsec: s.dateNsec,
    vmClockNsec: s.vmClockNsec,
    ...(s.icount === undefined ? {} : { icount: s.icount }),
  }));
}

/** Finds a snapshot by id first, then by name (as qemu-img's `-l` does). */
export function findSnapshot(entries: readonly SnapshotEntry[], idOrName: string): SnapshotEntry | undefined {
  return entries.find((s) => s.id === idOrName) ?? entries.find((s) => s.name === idOrName);
}
