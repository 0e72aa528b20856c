/**
 * Changing a qcow2 image's virtual size (qcow2_co_truncate). Growing
 * enlarges the L1 table (written elsewhere, header switched in one write),
 * preallocates and zeroes the new part as qemu does (grow.ts), then
 * records the new size. Shrinking drops every cluster past the
 * new end (references first, L1 entries zeroed before their L2 tables are
 * freed), trims the file after the last used cluster, then records the
 * size. Snapshots keep their own tables and sizes, as in qemu 7.2.
 */
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { asStep } from '../../core/strerror.js';
import type { ImageResizer } from '../driver.js';
import type { Qcow2Image } from './image.js';
import { growClusters, mustZeroGrown, type GrowPrealloc } from './grow.js';
import { growL1, writeBackMetadata, writeHeaderSize } from './l1-table.js';
import { l1EntriesFor } from './layout.js';
import { updateSnapshotRefcount } from './snapshot-refcount.js';
import type { Qcow2State } from './state.js';
import { Qcow2Writer } from './write.js';

const PREALLOC_MODES = new Set(['off', 'metadata', 'falloc', 'full']);

/** Builds the resize capability of a writable qcow2 image. */
export function qcow2Resizer(image: Qcow2Image): ImageResizer {
  return { resize: (newSize, options) => resizeQcow2(image, newSize, options.preallocation ?? 'off') };
}

function writerOf(image: Qcow2Image): Qcow2Writer {
  const w = image.writer;
  if (!(w instanceof Qcow2Writer)) throw new UnsupportedError('The image is open read-only');
  return w;
}

/** qcow2_co_truncate's refusals, in its order, before anything changes. */
function checkResize(image: Qcow2Image, newSize: number, prealloc: string): void {
  const s = image.state;
  if (!PREALLOC_MODES.has(prealloc)) throw new UnsupportedError(`Unsupported preallocation mode: ${prealloc}`);
  if (newSize % 512 !== 0) throw new InvalidArgumentError('The new size must be a multiple of 512');
  // v2 snapshots do not record their size: qemu would read them at the new one.
  if (s.snapshots.length && s.version < 3) throw new UnsupportedError("Can't resize a v2 image which has snapshots");
  image.bitmaps?.checkResize();
  if (newSize < s.header.size && prealloc !== 'off') throw new InvalidArgumentError("Preallocation can't be used for shrinking an image");
}

async function resizeQcow2(image: Qcow2Image, newSize: number, prealloc: string): Promise<void> {
  const s = image.state;
  const writer = writerOf(image);
  const rc = s.refcounts;
  if (!rc) throw new UnsupportedError('The image is open read-only');
  checkResize(image, newSize, prealloc);
  const old = s.header.size;
  await image.flush();
  try {
    if (newSize < old) {
      await shrink(s, writer, newSize);
      if (s.externalData && (await s.dataStore.size()) !== newSize) await s.dataStore.truncate(newSize);
    } else {
      await asStep('Failed to grow the L1 table', growL1(s, rc, l1EntriesFor(newSize, s.g)));
      const access = await writer.clusterAccess();
      const range = { oldSize: old, newSize };
      await access.guard(() => growClusters(s, access, range, prealloc as GrowPrealloc, mustZeroGrown(s, old)));
      await writer.flush();
    }
    await writeHeaderSize(s, newSize);
  } finally {
    writer.resetMetadata();
  }
}

async function shrink(s: Qcow2State, writer: Qcow2Writer, newSize: number): Promise<void> {
  const rc = s.refcounts;
  if (!rc) return;
  const cs = s.g.clusterSize;
  const start = Math.ceil(newSize / cs) * cs;
  const keep = l1EntriesFor(newSize, s.g);
  const span = s.g.l2Entries * cs;
  // The L2 table holding the new end: drop its clusters past the end. As qemu's discard (get_cluster_table), the
  // writer copies a shared table first and makes an empty one where there was none: the file keeps that cluster.
  const partialEnd = Math.min(s.header.size, keep * span);
  if (keep > 0 && start < partialEnd) await writer.dropPastEnd(start, partialEnd - start);
  await writer.flush();
  // Whole L2 tables past the end: zero their L1 entries on disk first, then drop the references.
  if (keep < s.l1Size) {
    const dropped = s.l1Bytes.slice(keep * 8, s.l1Size * 8);
    s.l1Bytes.fill(0, keep * 8, s.l1Size * 8);
    await s.store.write(s.header.l1TableOffset + keep * 8, s.l1Bytes.subarray(keep * 8, s.l1Size * 8));
    await s.store.flush();
    await updateSnapshotRefcount(s, rc, { view: new DataView(dropped.buffer), size: s.l1Size - keep }, -1);
    await writeBackMetadata(s, rc, new Set());
  }
  await rc.dropUnusedBlocks();
  await rc.writeBack();
  await trimFile(s);
}

/** Truncates the image file after its last used cluster (qcow2_get_last_cluster). */
async function trimFile(s: Qcow2State): Promise<void> {
  const rc = s.refcounts;
  if (!rc) return;
  const cs = s.g.clusterSize;
  const size = await s.store.size();
  const last = await rc.lastUsed(Math.ceil(size / cs));
  if (last >= 0 && (last + 1) * cs < size) await s.store.truncate((last + 1) * cs);
}
