/**
 * Metadata bookkeeping for writes: where every table lives (for the overlap
 * check before guest data is written) and the L1/L2 entry plumbing.
 */
import { CorruptImageError } from '../../core/errors.js';
import { l1Entry } from './cluster.js';
import { HEADER_FIELD } from './header.js';
import { INCOMPAT_CORRUPT, splitOffset, writeEntry } from './layout.js';
import type { Qcow2State } from './state.js';

/** Host clusters holding metadata, by cluster index, with what they hold. */
export class MetadataMap {
  readonly #clusters = new Map<number, string>();
  readonly #cs: number;

  constructor(clusterSize: number) {
    this.#cs = clusterSize;
  }

  /** Records `[offset, offset+length)` as holding `what`. */
  add(offset: number, length: number, what: string): void {
    const first = Math.floor(offset / this.#cs);
    const last = Math.floor((offset + Math.max(1, length) - 1) / this.#cs);
    for (let c = first; c <= last; c++) this.#clusters.set(c, what);
  }

  /** Forgets the clusters of `[offset, offset+length)`. */
  remove(offset: number, length = 1): void {
    const first = Math.floor(offset / this.#cs);
    const last = Math.floor((offset + Math.max(1, length) - 1) / this.#cs);
    for (let c = first; c <= last; c++) this.#clusters.delete(c);
  }

  /** What `[offset, offset+length)` overlaps, if anything. */
  overlap(offset: number, length: number): string | undefined {
    const first = Math.floor(offset / this.#cs);
    const last = Math.floor((offset + length - 1) / this.#cs);
    for (let c = first; c <= last; c++) {
      const what = this.#clusters.get(c);
      if (what) return what;
    }
    return undefined;
  }
}

/** Builds the map from the image's current tables (QEMU's "cached" overlap mode). */
export function buildMetadataMap(s: Qcow2State, refblocks: Float64Array): MetadataMap {
  const m = new MetadataMap(s.g.clusterSize);
  const h = s.header;
  m.add(0, s.g.clusterSize, 'qcow2_header');
  m.add(h.l1TableOffset, s.l1Size * 8, 'active L1 table');
  m.add(h.refcountTableOffset, h.refcountTableClusters * s.g.clusterSize, 'refcount table');
  for (const off of refblocks) if (off) m.add(off, s.g.clusterSize, 'refcount block');
  for (let i = 0; i < s.l1Size; i++) {
    const off = l1Entry(s, i);
    if (off) m.add(off, s.g.clusterSize, 'active L2 table');
  }
  let snapBytes = 0;
  for (const sn of s.snapshots) {
    snapBytes += sn.entryBytes;
    m.add(sn.l1TableOffset, sn.l1Size * 8, 'inactive L1 table');
  }
  if (snapBytes) m.add(h.snapshotsOffset, snapBytes, 'snapshot table');
  if (h.bitmaps) m.add(h.bitmaps.directoryOffset, h.bitmaps.directorySize, 'bitmap directory');
  return m;
}

/** Sets L1 entry `i` in memory (COPIED, pointing at `l2Offset`). */
export function setL1(s: Qcow2State, i: number, l2Offset: number): void {
  const { hi, lo } = splitOffset(l2Offset);
  writeEntry(s.l1, i * 8, l2Offset ? hi | 0x80000000 : 0, lo);
}

/** Writes the L1 entries in `dirty` back, in contiguous runs. */
export async function writeL1(s: Qcow2State, dirty: Set<number>): Promise<void> {
  const idx = [...dirty].sort((a, b) => a - b);
  dirty.clear();
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j]! + 1) j++;
    const first = idx[i]!;
    const last = idx[j]!;
    await s.store.write(s.header.l1TableOffset + first * 8, s.l1Bytes.subarray(first * 8, (last + 1) * 8));
    i = j + 1;
  }
}

/** Sets the corrupt bit on disk and returns the error to throw (qcow2_signal_corruption). */
export async function markCorrupt(s: Qcow2State, message: string): Promise<CorruptImageError> {
  if (s.version === 3) {
    s.header.incompatible |= BigInt(INCOMPAT_CORRUPT);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, s.header.incompatible);
    try {
      await s.store.write(HEADER_FIELD.incompatible, b);
      await s.store.flush();
    } catch {
      // The corruption error below matters more than a failed marker write.
    }
  }
  return new CorruptImageError(`qcow2: Marking image as corrupt: ${message}; further corruption events will be suppressed`, { file: s.filename });
}
