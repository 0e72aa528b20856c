/**
 * Reading and writing persistent bitmaps on disk (qcow2-bitmap.c):
 * bitmap data through its table, new tables and directories in freshly
 * allocated clusters, and the two header updates QEMU makes, each ordered
 * so a crash leaves either the old bitmaps or none trusted, never a
 * half-written set.
 */
import { isZero } from '../../core/bytes.js';
import { CorruptImageError } from '../../core/errors.js';
import { bitmapBytes, serializeDirEntries, tableEntry, type BitmapDirEntry } from './bitmap-dir.js';
import { rewriteHeader } from './backing.js';
import { HEADER_FIELD } from './header.js';
import { AUTOCLEAR_BITMAPS } from './layout.js';
import type { Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';

/** Reads the dirty bits of `e`, which covers `virtualSize` bytes (one bit per granule, LSB first). */
export async function loadBits(s: Qcow2State, e: BitmapDirEntry, virtualSize: number): Promise<Uint8Array> {
  const cs = s.g.clusterSize;
  const bytes = bitmapBytes(virtualSize, 2 ** e.granularityBits);
  const out = new Uint8Array(bytes);
  const raw = new Uint8Array(e.tableSize * 8);
  await s.store.read(e.tableOffset, raw);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < e.tableSize; i++) {
    const t = tableEntry(view, i, cs);
    const part = out.subarray(i * cs, Math.min(bytes, (i + 1) * cs));
    if (t.kind === 'ones') part.fill(0xff);
    else if (t.kind === 'data') await s.store.read(t.offset, part);
  }
  return out;
}

/** The host clusters `e` uses, for freeing: its data clusters and its table. */
export async function bitmapClusters(s: Qcow2State, e: BitmapDirEntry): Promise<{ data: number[]; table: { offset: number; clusters: number } }> {
  const cs = s.g.clusterSize;
  const raw = new Uint8Array(e.tableSize * 8);
  await s.store.read(e.tableOffset, raw);
  const view = new DataView(raw.buffer);
  const data: number[] = [];
  for (let i = 0; i < e.tableSize; i++) {
    const t = tableEntry(view, i, cs);
    if (t.kind === 'data') data.push(t.offset);
  }
  return { data, table: { offset: e.tableOffset, clusters: Math.ceil(raw.length / cs) } };
}

/**
 * Writes `bits` into new clusters: non-zero data clusters, then the table.
 * Returns the table's offset and size; refcounts are in the cache (the
 * caller writes them back before anything points at the clusters).
 */
export async function storeBits(s: Qcow2State, rc: Refcounts, bits: Uint8Array): Promise<{ tableOffset: number; tableSize: number }> {
  const cs = s.g.clusterSize;
  const tableSize = Math.ceil(bits.length / cs);
  const table = new Uint8Array(Math.max(8, tableSize * 8));
  const view = new DataView(table.buffer);
  const used: number[] = [];
  for (let i = 0; i < tableSize; i++) if (!isZero(bits.subarray(i * cs, (i + 1) * cs))) used.push(i);
  if (used.length) {
    const host = await rc.allocate(used.length);
    const buf = new Uint8Array(used.length * cs);
    used.forEach((i, k) => {
      buf.set(bits.subarray(i * cs, (i + 1) * cs), k * cs);
      view.setBigUint64(i * 8, BigInt(host + k * cs));
    });
    await s.store.write(host, buf);
  }
  const tableOffset = await rc.allocate(Math.ceil(table.length / cs));
  // The table's own bytes only, as QEMU writes them: the rest of its clusters is never read, and
  // left unwritten it stays a hole in the file (host allocation decides qemu's metadata-preallocation test).
  await s.store.write(tableOffset, table);
  return { tableOffset, tableSize };
}

async function writeAutoclear(s: Qcow2State): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, s.header.autoclear);
  await s.store.write(HEADER_FIELD.autoclear, b);
  await s.store.flush();
}

/**
 * Rewrites the directory where it is (the same size: only flags change),
 * with the autoclear bit cleared meanwhile (update_ext_header_and_dir_in_place).
 */
export async function rewriteDirInPlace(s: Qcow2State, entries: readonly BitmapDirEntry[]): Promise<void> {
  const ext = s.header.bitmaps;
  if (!ext) throw new CorruptImageError('No bitmap directory to update');
  const bytes = serializeDirEntries(entries);
  if (bytes.length !== ext.directorySize) throw new CorruptImageError('Bitmap directory size changed');
  s.header.autoclear &= ~BigInt(AUTOCLEAR_BITMAPS);
  await writeAutoclear(s);
  await s.store.write(ext.directoryOffset, bytes);
  await s.store.flush();
  s.header.autoclear |= BigInt(AUTOCLEAR_BITMAPS);
  await writeAutoclear(s);
}

/**
 * Writes a new directory into new clusters and switches the header to it
 * in one write (update_ext_header_and_dir). The caller has written back
 * and flushed the refcounts of every cluster the entries use. Returns the
 * old directory's clusters, to be freed by the caller.
 */
export async function switchDirectory(s: Qcow2State, rc: Refcounts, entries: readonly BitmapDirEntry[]): Promise<{ offset: number; clusters: number } | undefined> {
  const cs = s.g.clusterSize;
  const h = s.header;
  const old = h.bitmaps;
  if (entries.length) {
    const bytes = serializeDirEntries(entries);
    const clusters = Math.ceil(bytes.length / cs);
    const offset = await rc.allocate(clusters);
    // The directory's own bytes, as QEMU writes it (see storeBits).
    await s.store.write(offset, bytes);
    await rc.writeBack();
    await s.store.flush();
    h.bitmaps = { nbBitmaps: entries.length, directorySize: bytes.length, directoryOffset: offset };
    h.autoclear |= BigInt(AUTOCLEAR_BITMAPS);
  } else {
    h.bitmaps = undefined;
    h.autoclear &= ~BigInt(AUTOCLEAR_BITMAPS);
  }
  // The whole header cluster, as QEMU writes it: a shorter header leaves no stale extension bytes behind.
  await rewriteHeader(s);
  return old ? { offset: old.directoryOffset, clusters: Math.ceil(old.directorySize / cs) } : undefined;
}
