/**
 * Active L1 table maintenance shared by snapshots and resize
 * (qcow2_grow_l1_table), plus the crash-safe write-back of metadata that
 * the snapshot and resize paths change outside the writer.
 */
import { UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { HEADER_FIELD } from './header.js';
import { writeL1 } from './metadata.js';
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

/** Clusters needed for `bytes` of metadata. */
export function clustersFor(s: Qcow2State, bytes: number): number {
  return Math.ceil(bytes / s.g.clusterSize);
}

/**
 * Writes back in qcow2's order: refcount blocks, flush, L2 tables, flush,
 * the changed active L1 entries, flush.
 */
export async function writeBackMetadata(s: Qcow2State, rc: Refcounts, l1Dirty: Set<number>): Promise<void> {
  await rc.writeBack();
  await s.store.flush();
  await s.l2Cache.writeBack();
  await s.store.flush();
  if (l1Dirty.size) {
    await writeL1(s, l1Dirty);
    await s.store.flush();
  }
}

/**
 * Grows the active L1 table to exactly `entries` entries (no-op when it is
 * that big already): the new table is written elsewhere and flushed, then
 * the header's l1_size and l1_table_offset switch in one write, then the
 * old table's clusters are freed.
 *
 * @throws {UnsupportedError} "File too large" past QEMU's 32 MiB L1 limit
 */
export async function growL1(s: Qcow2State, rc: Refcounts, entries: number): Promise<void> {
  if (entries <= s.l1Size) return;
  if (entries > LIMITS.qcow2MaxL1Bytes / 8) {
    // qemu's -EFBIG: a system error's code, so that callers word it as their step ("Failed to grow the L1 table: File too large").
    throw new UnsupportedError('File too large', { errno: 27, cause: Object.assign(new Error('File too large'), { code: 'EFBIG' }) });
  }
  const bytes = new Uint8Array(entries * 8);
  bytes.set(s.l1Bytes.subarray(0, s.l1Size * 8));
  const offset = await rc.allocate(clustersFor(s, bytes.length));
  await rc.writeBack();
  await s.store.flush();
  await s.store.write(offset, bytes);
  await s.store.flush();
  const head = new Uint8Array(12);
  const hv = new DataView(head.buffer);
  hv.setUint32(0, entries);
  hv.setBigUint64(4, BigInt(offset));
  await s.store.write(HEADER_FIELD.l1Size, head);
  await s.store.flush();
  const old = { offset: s.header.l1TableOffset, entries: s.l1Size };
  s.header.l1Size = entries;
  s.header.l1TableOffset = offset;
  s.l1Bytes = bytes;
  s.l1 = new DataView(bytes.buffer);
  s.l1Size = entries;
  if (old.offset !== 0 && old.entries > 0) await rc.free(old.offset, clustersFor(s, old.entries * 8));
  await rc.writeBack();
  await s.store.flush();
}

/** Writes the guest size into the header (one write, flushed). */
export async function writeHeaderSize(s: Qcow2State, size: number): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(size));
  await s.store.write(HEADER_FIELD.size, b);
  await s.store.flush();
  s.header.size = size;
  s.virtualSize = size;
}
