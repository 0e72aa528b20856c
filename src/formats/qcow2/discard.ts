/**
 * Giving freed clusters back to the file system, as qemu's discard queue
 * does (update_refcount_discard, qcow2_process_discards): when an internal
 * snapshot is deleted (`pass-discard-snapshot`, on by default) or a
 * persistent bitmap's clusters are freed (always), qemu punches holes where
 * the clusters were, so the file's allocated size shrinks although its
 * length stays. Without it `snapshot -d` returned no space.
 *
 * Holes are punched only after the refcounts are written back and flushed,
 * and only for clusters whose refcount is still zero then (one freed and
 * allocated again since is left alone): nothing on disk can point at them,
 * so a crash at any point leaves at worst leaked clusters. Discarding is
 * advisory, as in qemu: a store that cannot punch holes keeps the space.
 */
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

/**
 * Runs a snapshot operation `body` recording the clusters whose refcount
 * drops to zero and, once it has succeeded, punches holes for those still
 * free (qemu's QCOW2_DISCARD_SNAPSHOT, unless the open options turned
 * `pass-discard-snapshot` off). The body must leave the refcounts written
 * back and flushed.
 */
export async function discardingSnapshotFrees<T>(s: Qcow2State, rc: Refcounts, body: () => Promise<T>): Promise<T> {
  if (s.discardSnapshot === false) return body();
  rc.collectFreed();
  let result: T;
  try {
    result = await body();
  } catch (err) {
    // A failed operation may have left references the cache does not know of: nothing is punched.
    rc.takeFreed();
    throw err;
  }
  await punchFreed(s, rc, rc.takeFreed());
  return result;
}

/** Punches holes for the clusters of `clusters` whose refcount is zero (written back and flushed by the caller). */
export async function punchFreed(s: Qcow2State, rc: Refcounts, clusters: readonly number[]): Promise<void> {
  const cs = s.g.clusterSize;
  const free: number[] = [];
  for (const c of new Set(clusters)) if ((await rc.get(c)) === 0) free.push(c);
  free.sort((a, b) => a - b);
  for (let i = 0; i < free.length; ) {
    let j = i + 1;
    while (j < free.length && free[j] === free[j - 1]! + 1) j++;
    try {
      await s.store.zeroRange?.(free[i]! * cs, (j - i) * cs, true);
    } catch {
      // Advisory, as in qemu (qcow2_process_discards ignores the result).
    }
    i = j;
  }
}
