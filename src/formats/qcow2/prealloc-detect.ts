/**
 * qemu's metadata-preallocation detection: when far more clusters have a
 * refcount than the host file really allocates, the image was made with
 * preallocation=metadata and its data clusters may be host-file holes.
 * qemu then asks the file for holes inside data clusters (BDRV_BLOCK_RECURSE),
 * which changes what block status and `map` report.
 */
import { LIMITS } from '../../core/limits.js';
import { getRefcountEntry, parseRefcountTable } from './refcount.js';
import type { Qcow2State } from './state.js';

/** True when the image looks metadata-preallocated (qcow2_detect_metadata_preallocation). */
export async function detectMetadataPreallocation(s: Qcow2State): Promise<boolean> {
  const fileLength = await s.store.size();
  const realAllocation = await s.store.allocatedSize?.();
  if (realAllocation === undefined) return false;
  const realClusters = Math.floor(realAllocation / s.g.clusterSize);
  const threshold = Math.max(Math.floor((realClusters * 10) / 9), realClusters + 2);
  const endCluster = Math.ceil(fileLength / s.g.clusterSize);
  const tableBytes = s.header.refcountTableClusters * s.g.clusterSize;
  if (tableBytes > LIMITS.qcow2MaxRefcountTableBytes) return false;
  const raw = new Uint8Array(tableBytes);
  await s.store.read(s.header.refcountTableOffset, raw);
  const table = parseRefcountTable(raw, s.g);
  const block = new Uint8Array(s.g.clusterSize);
  let count = 0;
  for (let bi = 0; bi < table.length && bi * s.g.refcountBlockEntries < endCluster && count < threshold; bi++) {
    const off = table[bi] ?? 0;
    if (off === 0) continue;
    await s.store.read(off, block);
    const n = Math.min(s.g.refcountBlockEntries, endCluster - bi * s.g.refcountBlockEntries);
    for (let i = 0; i < n && count < threshold; i++) if (getRefcountEntry(block, i, s.g.refcountBits) !== 0) count++;
  }
  return count >= threshold;
}
