/**
 * Where a streamed qcow2 image puts everything, computed from the plan
 * alone so the length is known before the first byte: header, L1 table,
 * refcount table, refcount blocks, L2 tables, then the data in guest
 * order. Placements are recomputed on each walk instead of kept, so the
 * memory a layout holds does not grow with the image.
 */
import { IoError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { StreamPlan } from '../driver.js';
import { l1EntriesFor, type Geometry } from './layout.js';
import { refcountMax, refcountStructuresFor } from './refcount.js';

/** One data unit placed in the data area. */
export interface Placement {
  /** Index of the unit in the plan. */
  readonly k: number;
  /** Guest cluster index. */
  readonly cluster: number;
  /** Byte offset from the start of the data area. */
  readonly at: number;
  /** Bytes stored: the cluster size for a plain cluster, less for a compressed one. */
  readonly length: number;
  readonly compressed: boolean;
}

/** Byte offsets and cluster counts of every part of the file. */
export interface StreamLayout {
  readonly g: Geometry;
  readonly l1Size: number;
  /** 0 when the image has no L1 table (size 0). */
  readonly l1Offset: number;
  readonly l1Clusters: number;
  readonly reftableOffset: number;
  readonly reftableClusters: number;
  readonly refblocksOffset: number;
  readonly refblocks: number;
  readonly l2Offset: number;
  readonly l2Tables: number;
  readonly dataOffset: number;
  readonly dataClusters: number;
  /** Clusters before the data area (all of them referenced once). */
  readonly metadataClusters: number;
  /** Bytes of the whole file. */
  readonly length: number;
}

/**
 * The data units placed one after another. Plain clusters are cluster
 * aligned; compressed ones are packed byte by byte (as qcow2_alloc_bytes
 * packs them), each holding a reference on every host cluster it touches,
 * and start a fresh host cluster when one more reference would overflow
 * the refcount width.
 */
export function* placements(plan: StreamPlan, g: Geometry): Generator<Placement> {
  const cs = g.clusterSize;
  const maxRef = refcountMax(g.refcountBits);
  let pos = 0;
  // References already held on the host cluster `pos` is in (when `pos` is inside one).
  let shared = 0;
  for (let k = 0; k < plan.units.length; k++) {
    const cluster = plan.units[k]!;
    const length = plan.packed ? plan.packed[k]! : cs;
    if (length <= 0 || length > cs) throw new IoError(`A unit packed to ${length} bytes, outside 1..${cs}`, { offset: cluster * cs });
    const compressed = length < cs;
    if (pos % cs !== 0 && (!compressed || shared >= maxRef)) pos = Math.ceil(pos / cs) * cs;
    if (pos % cs === 0) shared = 0;
    const first = Math.floor(pos / cs);
    const last = Math.floor((pos + length - 1) / cs);
    yield { k, cluster, at: pos, length, compressed };
    pos += length;
    shared = pos % cs === 0 ? 0 : (last > first ? 0 : shared) + 1;
  }
}

/** Bytes the data area takes, up to the end of its last cluster. */
function dataBytes(plan: StreamPlan, g: Geometry): number {
  let end = 0;
  for (const p of placements(plan, g)) end = p.at + p.length;
  return Math.ceil(end / g.clusterSize) * g.clusterSize;
}

/** L1 indexes that need an L2 table, in order. */
export function* l2TableIndexes(plan: StreamPlan, g: Geometry): Generator<number> {
  let last = -1;
  for (const u of plan.units) {
    const t = Math.floor(u / g.l2Entries);
    if (t !== last) yield t;
    last = t;
  }
}

/**
 * Lays the image out for `plan` (whose size is the image's virtual size).
 *
 * @throws {UnsupportedError} when the refcount table would be larger than qemu reads
 */
export function streamLayout(plan: StreamPlan, g: Geometry): StreamLayout {
  const cs = g.clusterSize;
  const l1Size = l1EntriesFor(plan.size, g);
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  let l2Tables = 0;
  for (const _ of l2TableIndexes(plan, g)) l2Tables++;
  const dataClusters = dataBytes(plan, g) / cs;
  const { blocks, table } = refcountStructuresFor(1 + l1Clusters + l2Tables + dataClusters, g);
  if (table * cs > LIMITS.qcow2MaxRefcountTableBytes) {
    // qemu refuses to open an image whose refcount table is larger.
    throw new UnsupportedError(`The streamed qcow2 image would need a refcount table of ${table * cs} bytes, more than the ${LIMITS.qcow2MaxRefcountTableBytes} qemu reads (try using a larger cluster size)`);
  }
  const reftableOffset = (1 + l1Clusters) * cs;
  const refblocksOffset = reftableOffset + table * cs;
  const l2Offset = refblocksOffset + blocks * cs;
  const dataOffset = l2Offset + l2Tables * cs;
  return {
    g,
    l1Size,
    l1Offset: l1Size > 0 ? cs : 0,
    l1Clusters,
    reftableOffset,
    reftableClusters: table,
    refblocks: blocks,
    refblocksOffset,
    l2Offset,
    l2Tables,
    dataOffset,
    dataClusters,
    metadataClusters: dataOffset / cs,
    length: dataOffset + dataClusters * cs,
  };
}

/**
 * The refcount of every data cluster, in order: 1 for a plain cluster, the
 * number of compressed clusters touching it for shared ones (as qemu-img
 * check counts them).
 */
export function* dataRefcounts(plan: StreamPlan, layout: StreamLayout): Generator<number> {
  const cs = layout.g.clusterSize;
  let cur = 0;
  let count = 0;
  let sent = 0;
  for (const p of placements(plan, layout.g)) {
    const last = Math.floor((p.at + p.length - 1) / cs);
    for (let c = Math.floor(p.at / cs); c <= last; c++) {
      while (c > cur) {
        yield count;
        sent++;
        cur++;
        count = 0;
      }
      count++;
    }
  }
  if (count > 0) {
    yield count;
    sent++;
  }
  for (; sent < layout.dataClusters; sent++) yield 0;
}
