/**
 * Changing a qcow2 image's virtual size (qcow2_co_truncate). Growing
 * enlarges the L1 table (written elsewhere, header switched in one write)
 * and then records the new size. Shrinking drops every cluster past the
 * new end (references first, L1 entries zeroed before their L2 tables are
 * freed), trims the file after the last used cluster, then records the
 * size. Snapshots keep their own tables and sizes, as in qemu 7.2.
 */
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import type { ImageResizer } from '../driver.js';
import type { Qcow2Image } from './image.js';
import { growL1, writeBackMetadata, writeHeaderSize } from './l1-table.js';
import { l1EntriesFor } from './layout.js';
import { updateSnapshotRefcount } from './snapshot-refcount.js';
import type { Qcow2State } from './state.js';
import { Qcow2Writer } from './write.js';

const PREALLOC_MODES = new Set(['off', 'metadata', 'falloc', 'full']);
const ZERO_CHUNK = 8 * 1024 * 1024;

/** Builds the resize capability of a writable qcow2 image. */
export function qcow2Resizer(image: Qcow2Image): ImageResizer {
  return { resize: (newSize, options) => resizeQcow2(image, newSize, options.preallocation ?? 'off') };
}

function writerOf(image: Qcow2Image): Qcow2Writer {
  const w = image.writer;
  if (!(w instanceof Qcow2Writer)) throw new UnsupportedError('The image is open read-only');
  return w;
}

async function resizeQcow2(image: Qcow2Image, newSize: number, prealloc: string): Promise<void> {
  const s = image.state;
  const writer = writerOf(image);
  const rc = s.refcounts;
  if (!rc) throw new UnsupportedError('The image is open read-only');
  if (!PREALLOC_MODES.has(prealloc)) throw new InvalidArgumentError(`Unsupported preallocation mode: ${prealloc}`);
  if (newSize % 512 !== 0) throw new InvalidArgumentError('The new size must be a multiple of 512');
  if (s.bitmaps.length) {
    throw new UnsupportedError('Resizing qcow2 images with persistent dirty bitmaps is not supported yet (vdisk cannot resize the bitmaps)');
  }
  const old = s.header.size;
  await image.flush();
  try {
    if (newSize < old) {
      if (prealloc !== 'off') throw new InvalidArgumentError("Preallocation can't be used for shrinking an image");
      await shrink(s, writer, newSize);
    } else {
      await growL1(s, rc, l1EntriesFor(newSize, s.g));
    }
    if (s.externalData && (await s.dataStore.size()) !== newSize && (newSize < old || (await s.dataStore.size()) < newSize)) {
      await s.dataStore.truncate(newSize);
    }
    await writeHeaderSize(s, newSize);
  } finally {
    writer.resetMetadata();
  }
  if (newSize > old && prealloc !== 'off') await preallocate(s, writer, old, newSize);
}

/**
 * Preallocates the grown range by writing zeros into newly allocated
 * clusters (qemu reserves them without writing for `metadata` and
 * `falloc`; the content and the consistency are the same).
 */
async function preallocate(s: Qcow2State, writer: Qcow2Writer, old: number, newSize: number): Promise<void> {
  const cs = s.g.clusterSize;
  const start = Math.ceil(old / cs) * cs;
  const zeros = new Uint8Array(Math.min(ZERO_CHUNK, Math.max(0, newSize - start)));
  for (let pos = start; pos < newSize; pos += zeros.length) {
    await writer.write(pos, zeros.subarray(0, Math.min(zeros.length, newSize - pos)));
  }
  await writer.flush();
}

async function shrink(s: Qcow2State, writer: Qcow2Writer, newSize: number): Promise<void> {
  const rc = s.refcounts;
  if (!rc) return;
  const cs = s.g.clusterSize;
  const start = Math.ceil(newSize / cs) * cs;
  const keep = l1EntriesFor(newSize, s.g);
  const span = s.g.l2Entries * cs;
  // The L2 table holding the new end: drop its clusters past the end (the writer copies a shared table first).
  const partialEnd = Math.min(s.header.size, keep * span);
  if (keep > 0 && start < partialEnd && s.l1.getUint32((keep - 1) * 8) + s.l1.getUint32((keep - 1) * 8 + 4) !== 0) {
    await writer.discard(start, partialEnd - start);
  }
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
  await trimFile(s);
}

/** Truncates the image file after its last used cluster (qcow2_get_last_cluster). */
async function trimFile(s: Qcow2State): Promise<void> {
  const rc = s.refcounts;
  if (!rc) return;
  const cs = s.g.clusterSize;
  const size = await s.store.size();
  let last = Math.ceil(size / cs) - 1;
  while (last >= 0 && (await rc.get(last)) === 0) last--;
  if (last >= 0 && (last + 1) * cs < size) await s.store.truncate((last + 1) * cs);
}
