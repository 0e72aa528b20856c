/**
 * The growing half of qcow2_co_truncate, once the L1 table is big enough:
 * the preallocation mode's work (prealloc.ts), then, when the grown part
 * must read as zeros (the backing file reaches past the old end: the block
 * layer's BDRV_REQ_ZERO_WRITE), zero flags over it and explicit zeros for
 * an unaligned head, so no stale backing data shows through.
 */
import { UnsupportedError } from '../../core/errors.js';
import { truncateLikeQemu } from '../../io/truncate.js';
import { readSlot, writeSlot, type ClusterAccess, type Slot } from './entries.js';
import { subclusterRange } from './layout.js';
import { preallocateData, preallocateMetadata } from './prealloc.js';
import type { Qcow2State } from './state.js';

/** Preallocation modes of create and resize. */
export type GrowPrealloc = 'off' | 'metadata' | 'falloc' | 'full';

const ALL_ZEROES = 0xffffffff;

function zeroFailed(): UnsupportedError {
  return new UnsupportedError('Failed to zero out new clusters: Operation not supported', { errno: 95 });
}

/** True when growing from `oldSize` must zero the new part (bdrv_co_truncate's backing test). */
export function mustZeroGrown(s: Qcow2State, oldSize: number): boolean {
  return s.backingReader !== undefined && (s.backingSize ?? 0) > oldSize;
}

/**
 * Grows guest `[oldSize, newSize)` as qemu does: `off` maps nothing (an
 * external data file is cut or extended to the new size), `metadata` maps
 * every new cluster without writing it, `falloc`/`full` also allocate the
 * host space; with a raw data file `off` means `metadata`. With `zeroNew`
 * the new part then reads as zeros, whatever the backing file holds.
 *
 * @throws {UnsupportedError} "Failed to zero out new clusters" for compat=0.10 images
 *   (no zero flag) and compressed clusters cut by the zeroed range, as qemu
 */
export async function growClusters(
  s: Qcow2State,
  a: ClusterAccess,
  range: { oldSize: number; newSize: number },
  prealloc: GrowPrealloc,
  zeroNew: boolean,
): Promise<void> {
  const { oldSize, newSize } = range;
  const mode = s.dataFileRaw && prealloc === 'off' ? 'metadata' : prealloc;
  let zero = zeroNew && newSize > oldSize;
  // Refused before anything is allocated (qemu's file driver always can; its host_device driver never).
  if ((mode === 'falloc' || mode === 'full') && s.dataStore.device) {
    throw new UnsupportedError(`Failed to resize underlying file: Preallocation mode '${mode}' unsupported for this non-regular file`, { file: s.dataStore.name });
  }
  if ((mode === 'falloc' || mode === 'full') && !s.dataStore.preallocate) {
    throw new UnsupportedError(`Preallocation mode '${mode}' is not supported on '${s.dataStore.name}'`);
  }
  if (mode === 'off') {
    if (s.externalData && (await s.dataStore.size()) !== newSize) await truncateLikeQemu(s.dataStore, newSize);
  } else if (mode === 'metadata') {
    await preallocateMetadata(s, a, oldSize, newSize, 'off');
  } else if (s.externalData) {
    await preallocateMetadata(s, a, oldSize, newSize, mode);
  } else {
    // The new host space reads as zeros: allocating every subcluster replaces the zeroing.
    await preallocateData(s, a, oldSize, newSize, mode, zero);
    zero = false;
  }
  if (zero) await zeroGrown(s, a, oldSize, newSize);
}

/** Zero flags from the first subcluster boundary at or after `oldSize`, explicit zeros before it. */
async function zeroGrown(s: Qcow2State, a: ClusterAccess, oldSize: number, newSize: number): Promise<void> {
  const sc = s.g.subclusterSize;
  const zeroStart = Math.ceil(oldSize / sc) * sc;
  if (newSize > zeroStart) {
    if (s.version < 3) throw zeroFailed();
    await zeroClusters(s, a, zeroStart, newSize);
  }
  if (zeroStart > oldSize) await a.write(oldSize, new Uint8Array(Math.min(zeroStart, newSize) - oldSize));
}

/**
 * qcow2_subcluster_zeroize without MAY_UNMAP over `[from, to)` (`to` is the
 * image's end): clusters keep their host cluster and get the zero flag (all
 * zero bits with extended L2); compressed clusters are dropped; a cluster
 * cut at `from` gets zero bits for its subclusters from there on.
 */
async function zeroClusters(s: Qcow2State, a: ClusterAccess, from: number, to: number): Promise<void> {
  const cs = s.g.clusterSize;
  for (let pos = from; pos < to; ) {
    const slot = await a.slotFor(pos);
    const c0 = Math.floor(pos / cs);
    const n = Math.min(Math.ceil(to / cs) - c0, s.g.l2Entries - slot.index);
    for (let i = 0; i < n; i++) {
      const cStart = (c0 + i) * cs;
      zeroCluster(s, a, { ...slot, index: slot.index + i }, Math.max(0, pos - cStart), Math.min(cs, to - cStart));
    }
    pos = (c0 + n) * cs;
  }
}

/** Zeroes `[from, to)` of one cluster (`to` may stop short of its end only at the image's end). */
function zeroCluster(s: Qcow2State, a: ClusterAccess, slot: Slot, from: number, to: number): void {
  const e = readSlot(s, slot);
  if (!s.g.extendedL2) {
    writeSlot(s, s.l2Cache, slot, e.compressed ? { host: 0, copied: false, zero: true } : { host: e.host, copied: e.copied, zero: true });
    if (e.compressed) a.unref(e);
    return;
  }
  if (from > 0) {
    // zero_l2_subclusters: only whole subclusters, never inside a compressed cluster.
    if (e.compressed) throw zeroFailed();
    const sc = s.g.subclusterSize;
    const mask = subclusterRange(from / sc, Math.ceil((to - from) / sc));
    writeSlot(s, s.l2Cache, slot, { host: e.host, copied: e.copied, zeroMask: (e.zeroMask | mask) >>> 0, allocMask: (e.allocMask & ~mask) >>> 0 });
    return;
  }
  writeSlot(s, s.l2Cache, slot, e.compressed ? { host: 0, copied: false, zeroMask: ALL_ZEROES, allocMask: 0 } : { host: e.host, copied: e.copied, zeroMask: ALL_ZEROES, allocMask: 0 });
  if (e.compressed) a.unref(e);
}
