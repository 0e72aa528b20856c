/**
 * The snapshot-table part of a check (qemu's qcow2_check_read_snapshot_table
 * and qcow2_check_fix_snapshot_table): v3 entries need at least the VM state
 * size and disk size as extra data. A table cut short by the end of the file
 * reads as zeros, so its entries land here. With -r all the table is
 * rewritten with complete entries once the refcounts are known good.
 */
import type { CheckRequest } from '../driver.js';
import { writeSnapshotTable } from './snapshot-table.js';
import type { Qcow2State } from './state.js';
import { loadRefcounts } from './writer-open.js';

/**
 * Counts (and logs) v3 entries with less than 16 bytes of extra data, as
 * qemu does before counting references. Each is one corruption.
 */
export function checkSnapshotEntries(s: Qcow2State, req: CheckRequest, repair: boolean): number {
  if (s.version < 3) return 0;
  let n = 0;
  s.snapshots.forEach((sn, i) => {
    // The reader leaves diskSize unset exactly when the extra data is shorter than 16 bytes.
    if (sn.diskSize !== undefined) return;
    req.log(`${repair ? 'Repairing' : 'ERROR'} snapshot table entry ${i} is incomplete`);
    n++;
  });
  return n;
}

/**
 * qcow2_check_fix_snapshot_table: rewrites the table (missing extra data
 * filled in: disk size = current size, no icount) in a new place.
 */
export async function rewriteSnapshotTable(s: Qcow2State): Promise<void> {
  // A check opens without a writer (and may have rebuilt the structures): load them as they are now.
  const rc = s.refcounts ?? (await loadRefcounts(s));
  await writeSnapshotTable(s, rc, s.snapshots);
}
