/**
 * Rebuilding reference counts from the metadata (qemu's calculate_refcounts
 * and check_refcounts_l1/l2): header, active and snapshot L1/L2 tables,
 * snapshot table, refcount table and blocks, bitmap directory and tables,
 * with qemu's findings and messages. Entries are read as two 32-bit halves
 * so the per-entry path never touches BigInt.
 */
import { throwIfAborted } from '../../core/abort.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { CheckRequest } from '../driver.js';
import { ComputedRefcounts } from './check-refmap.js';
import type { ReftableEntry } from './check-stored.js';
import { HI_COMPRESSED, HI_COPIED } from './layout.js';
import { refcountMax } from './refcount.js';
import type { Qcow2State } from './state.js';

/** qemu's BdrvCheckResult, mutable while a check runs. */
export interface CheckResult {
  corruptions: number;
  leaks: number;
  checkErrors: number;
  corruptionsFixed: number;
  leaksFixed: number;
  imageEndOffset: number;
  totalClusters: number;
  allocatedClusters: number;
  fragmentedClusters: number;
  compressedClusters: number;
}

/** A fresh, all-zero result. */
export function emptyResult(): CheckResult {
  return {
    corruptions: 0,
    leaks: 0,
    checkErrors: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    imageEndOffset: 0,
    totalClusters: 0,
    allocatedClusters: 0,
    fragmentedClusters: 0,
    compressedClusters: 0,
  };
}

/** What to repair: qemu's BDRV_FIX_LEAKS and BDRV_FIX_ERRORS. */
export interface Fix {
  readonly leaks: boolean;
  readonly errors: boolean;
}

/** One check pass over an image. */
export interface CheckCtx {
  readonly s: Qcow2State;
  res: CheckResult;
  readonly req: CheckRequest;
  /** The image file's current length (grows when a repair extends the file). */
  fileSize: number;
  refs: ComputedRefcounts;
  /** L1 entries walked so far, of `work` (progress). */
  done: number;
  readonly work: number;
}

/** `%x` of a 64-bit value given as halves. */
export function hex64(hi: number, lo: number): string {
  return hi ? (hi >>> 0).toString(16) + (lo >>> 0).toString(16).padStart(8, '0') : (lo >>> 0).toString(16);
}

/** `%#x`: `0x` prefix except for zero. */
function hexAlt(n: number): string {
  return n === 0 ? '0' : `0x${n.toString(16)}`;
}

/** Grows the computed table to hold `n` clusters, rounded to whole refblocks as qemu's realloc_refcount_array does. */
export function growRefs(ctx: CheckCtx, n: number): void {
  const E = ctx.s.g.refcountBlockEntries;
  if (n > ctx.refs.size) ctx.refs.size = Math.ceil(n / E) * E;
}

/** qcow2_inc_refcounts_imrt: one more reference to each cluster of `[offset, offset+size)`. */
export function inc(ctx: CheckCtx, offset: number, size: number): void {
  if (size <= 0) return;
  const cs = ctx.s.g.clusterSize;
  if (offset + size - ctx.fileSize >= cs) {
    ctx.req.log(`ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x${size.toString(16)}`);
    ctx.res.corruptions++;
    return;
  }
  const max = refcountMax(ctx.s.g.refcountBits);
  const last = Math.floor((offset + size - 1) / cs);
  for (let k = Math.floor(offset / cs); k <= last; k++) {
    growRefs(ctx, k + 1);
    const v = ctx.refs.get(k);
    if (v >= max) {
      ctx.req.log(`ERROR: overflow cluster offset=0x${(k * cs).toString(16)}`);
      ctx.req.log('Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing');
      ctx.res.corruptions++;
      continue;
    }
    ctx.refs.set(k, v + 1);
  }
}

/** Offset bits 9..55 of an entry (exact as a double: 47 significant bits). */
function offsetOf(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
}

/** Reads `length` bytes at `offset` (zeros past the end of the file, as qemu's reads). */
export async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  if (offset <= Number.MAX_SAFE_INTEGER - length) await store.read(offset, buf);
  return buf;
}

/** fix_l2_entry_by_zero: the entry becomes a plain zero cluster, written synchronously. */
async function zeroEntry(ctx: CheckCtx, l2Off: number, table: DataView, i: number): Promise<boolean> {
  const { s } = ctx;
  const es = s.g.l2EntrySize;
  if (s.g.extendedL2) {
    const zero = table.getUint32(i * es + 8);
    const alloc = table.getUint32(i * es + 12);
    table.setUint32(i * es + 8, (zero | alloc) >>> 0);
    table.setUint32(i * es + 12, 0);
    table.setUint32(i * es, 0);
    table.setUint32(i * es + 4, 0);
  } else {
    table.setUint32(i * es, 0);
    table.setUint32(i * es + 4, 1);
  }
  try {
    await s.store.write(l2Off + i * es, new Uint8Array(table.buffer, table.byteOffset + i * es, es).slice());
    await s.store.flush();
  } catch (err) {
    ctx.req.log(`ERROR: Failed to overwrite L2 table entry: ${err instanceof Error ? err.message : String(err)}`);
    ctx.res.checkErrors++;
    return false;
  }
  ctx.res.corruptions--;
  ctx.res.corruptionsFixed++;
  return true;
}

interface L2Walk {
  readonly stats: boolean;
  readonly fix: Fix;
  /** Contiguity tracking for the fragmentation statistic (reset per L2 table). */
  next: number;
}

/** One standard or zero-alloc cluster of check_refcounts_l2. */
async function normalEntry(ctx: CheckCtx, w: L2Walk, l2Off: number, view: DataView, i: number, hi: number, lo: number, alloc: number, zero: number): Promise<void> {
  const { s, res } = ctx;
  const offset = offsetOf(hi, lo);
  if ((zero & alloc) !== 0) {
    res.corruptions++;
    ctx.req.log(`ERROR offset=${offset.toString(16)}: Allocated cluster has corrupted subcluster allocation bitmap`);
  }
  if (offset % s.g.clusterSize !== 0) {
    res.corruptions++;
    const containsData = s.g.extendedL2 ? alloc !== 0 : (lo & 1) === 0;
    if (!containsData) {
      ctx.req.log(`${w.fix.errors ? 'Repairing' : 'ERROR'} offset=${offset.toString(16)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`);
      if (w.fix.errors && (await zeroEntry(ctx, l2Off, view, i))) return;
    } else {
      ctx.req.log(`ERROR offset=${offset.toString(16)}: Data cluster is not properly aligned; L2 entry corrupted.`);
    }
  }
  if (w.stats) {
    res.allocatedClusters++;
    if (w.next && offset !== w.next) res.fragmentedClusters++;
    w.next = offset + s.g.clusterSize;
  }
  if (!s.externalData) inc(ctx, offset, s.g.clusterSize);
}

function compressedEntry(ctx: CheckCtx, w: L2Walk, i: number, hi: number, lo: number, bitmap: boolean): void {
  const { s, res } = ctx;
  let h = hi;
  const shift = s.g.csizeShift;
  if (h & HI_COPIED) {
    const coff = (h & (2 ** (shift - 32) - 1)) * 0x100000000 + (lo >>> 0);
    ctx.req.log(`ERROR: coffset=0x${coff.toString(16)}: copied flag must never be set for compressed clusters`);
    h &= ~HI_COPIED;
    res.corruptions++;
  }
  if (s.externalData) {
    ctx.req.log(`ERROR compressed cluster ${i} with data file, entry=0x${hex64(h, lo)}`);
    res.corruptions++;
    return;
  }
  if (bitmap) {
    ctx.req.log(`ERROR compressed cluster ${i} with non-zero subcluster allocation bitmap, entry=0x${hex64(h, lo)}`);
    res.corruptions++;
    return;
  }
  const coff = (h & (2 ** (shift - 32) - 1)) * 0x100000000 + (lo >>> 0);
  const sectors = Math.floor((h & 0x3fffffff) / 2 ** (shift - 32)) + 1;
  inc(ctx, coff, sectors * 512 - (coff % 512));
  if (w.stats) {
    res.allocatedClusters++;
    res.compressedClusters++;
    res.fragmentedClusters++;
  }
}

/** check_refcounts_l2. */
async function checkL2(ctx: CheckCtx, l2Off: number, w: L2Walk): Promise<void> {
  const { s, res } = ctx;
  const es = s.g.l2EntrySize;
  const bytes = await readAt(s.store, l2Off, s.g.l2Entries * es);
  const view = new DataView(bytes.buffer);
  w.next = 0; // qemu tracks contiguity per L2 table
  for (let i = 0; i < s.g.l2Entries; i++) {
    const hi = view.getUint32(i * es);
    const lo = view.getUint32(i * es + 4);
    const zero = es === 16 ? view.getUint32(i * es + 8) : 0;
    const alloc = es === 16 ? view.getUint32(i * es + 12) : 0;
    if (hi === 0 && lo === 0 && zero === 0 && alloc === 0) continue;
    if (hi & HI_COMPRESSED) {
      compressedEntry(ctx, w, i, hi, lo, zero !== 0 || alloc !== 0);
      continue;
    }
    if (hi & 0x3f000000 || lo & 0x1fe) {
      ctx.req.log(`ERROR found l2 entry with reserved bits set: ${hex64(hi, lo)}`);
      res.corruptions++;
    }
    const hasOffset = (hi & 0x00ffffff) !== 0 || (lo & 0xfffffe00) !== 0;
    const zeroFlag = !s.g.extendedL2 && (lo & 1) !== 0;
    if (zeroFlag && !hasOffset) continue; // ZERO_PLAIN
    if (!zeroFlag && !hasOffset && !(s.externalData && hi & HI_COPIED)) {
      if (alloc !== 0) {
        res.corruptions++;
        ctx.req.log('ERROR: Unallocated cluster has non-zero subcluster allocation map');
      }
      continue;
    }
    await normalEntry(ctx, w, l2Off, view, i, hi, lo, alloc, zero);
  }
}

/** check_refcounts_l1: the table, its L2 tables and everything they reference. */
export async function checkL1(ctx: CheckCtx, l1Off: number, l1Size: number, stats: boolean, fix: Fix): Promise<void> {
  if (!l1Size) return;
  const { s, res } = ctx;
  inc(ctx, l1Off, l1Size * 8);
  const l1 = new DataView((await readAt(s.store, l1Off, l1Size * 8)).buffer);
  const w: L2Walk = { stats, fix, next: 0 };
  for (let i = 0; i < l1Size; i++) {
    const hi = l1.getUint32(i * 8);
    const lo = l1.getUint32(i * 8 + 4);
    ctx.done++;
    if (hi === 0 && lo === 0) continue;
    throwIfAborted(ctx.req.signal);
    if (hi & 0x7f000000 || lo & 0x1ff) {
      ctx.req.log(`ERROR found L1 entry with reserved bits set: ${hex64(hi, lo)}`);
      res.corruptions++;
    }
    const l2Off = offsetOf(hi, lo);
    inc(ctx, l2Off, s.g.clusterSize);
    if (l2Off % s.g.clusterSize !== 0) {
      ctx.req.log(`ERROR l2_offset=${l2Off.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
      res.corruptions++;
    }
    await checkL2(ctx, l2Off, w);
    ctx.req.onProgress?.(ctx.done, ctx.work);
  }
}

/** qcow2_check_bitmaps_refcounts: directory, bitmap tables and their clusters. */
async function checkBitmaps(ctx: CheckCtx): Promise<void> {
  const { s, res } = ctx;
  const ext = s.header.bitmaps;
  if (!ext) return;
  inc(ctx, ext.directoryOffset, ext.directorySize);
  const dir = await readAt(s.store, ext.directoryOffset, ext.directorySize);
  const dv = new DataView(dir.buffer);
  let p = 0;
  for (let n = 0; n < ext.nbBitmaps; n++) {
    if (p + 24 > dir.length) {
      res.corruptions++;
      return;
    }
    const tableOff = dv.getUint32(p) * 0x100000000 + dv.getUint32(p + 4);
    const tableSize = dv.getUint32(p + 8);
    inc(ctx, tableOff, tableSize * 8);
    const table = new DataView((await readAt(s.store, tableOff, Math.min(tableSize, LIMITS.qcow2MaxL1Bytes / 8) * 8)).buffer);
    for (let i = 0; i < table.byteLength / 8; i++) {
      const hi = table.getUint32(i * 8);
      const lo = table.getUint32(i * 8 + 4);
      const off = offsetOf(hi, lo);
      if (hi & 0xff000000 || lo & 0x1fe || (off !== 0 && (lo & 1 || off % s.g.clusterSize !== 0))) {
        res.corruptions++;
        continue;
      }
      if (off !== 0) inc(ctx, off, s.g.clusterSize);
    }
    p = Math.ceil((p + 24 + dv.getUint32(p + 20) + dv.getUint16(p + 18)) / 8) * 8;
  }
}

/** check_refblocks: every refblock is aligned, inside the image and referenced once. Returns true when a rebuild is needed. */
async function checkRefblocks(ctx: CheckCtx, table: readonly ReftableEntry[], fix: Fix): Promise<boolean> {
  const { s, res } = ctx;
  const cs = s.g.clusterSize;
  let rebuild = false;
  for (let i = 0; i < table.length; i++) {
    const { offset, reserved } = table[i]!;
    const cluster = Math.floor(offset / cs);
    if (reserved) {
      ctx.req.log(`ERROR refcount table entry ${i} has reserved bits set`);
      res.corruptions++;
      rebuild = true;
      continue;
    }
    if (offset % cs !== 0) {
      ctx.req.log(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
      res.corruptions++;
      rebuild = true;
      continue;
    }
    if (cluster >= ctx.refs.size) {
      res.corruptions++;
      ctx.req.log(`${fix.errors ? 'Repairing' : 'ERROR'} refcount block ${i} is outside image`);
      if (fix.errors) {
        if (offset > LIMITS.maxOffset - cs) {
          ctx.req.log('ERROR could not resize image: Invalid argument');
          rebuild = true;
          continue;
        }
        await s.store.truncate(offset + cs);
        await s.store.flush();
        ctx.fileSize = await s.store.size();
        growRefs(ctx, Math.ceil(ctx.fileSize / cs));
        res.corruptions--;
        res.corruptionsFixed++;
        inc(ctx, offset, cs);
      }
      continue;
    }
    if (offset !== 0) {
      inc(ctx, offset, cs);
      const n = ctx.refs.get(cluster);
      if (n !== 1) {
        ctx.req.log(`ERROR refcount block ${i} refcount=${n}`);
        res.corruptions++;
        rebuild = true;
      }
    }
  }
  return rebuild;
}

/** calculate_refcounts: fills `ctx.refs`; returns true when the refcount structures must be rebuilt. */
export async function calculateRefcounts(ctx: CheckCtx, table: readonly ReftableEntry[], fix: Fix): Promise<boolean> {
  const { s, res } = ctx;
  const h = s.header;
  const cs = s.g.clusterSize;
  inc(ctx, 0, cs);
  await checkL1(ctx, h.l1TableOffset, s.l1Size, true, fix);
  if (s.externalData && s.snapshots.length) {
    ctx.req.log(`ERROR ${s.snapshots.length} snapshots in image with data file`);
    res.corruptions++;
  }
  let snapshotsSize = 0;
  for (const sn of s.snapshots) {
    snapshotsSize += sn.entryBytes;
    if (sn.l1TableOffset % cs !== 0) {
      ctx.req.log(`ERROR snapshot ${sn.id} (${sn.name}) l1_offset=${hexAlt(sn.l1TableOffset)}: L1 table is not cluster aligned; snapshot table entry corrupted`);
      res.corruptions++;
      continue;
    }
    if (sn.l1Size > LIMITS.qcow2MaxL1Bytes / 8) {
      ctx.req.log(`ERROR snapshot ${sn.id} (${sn.name}) l1_size=${hexAlt(sn.l1Size)}: L1 table is too large; snapshot table entry corrupted`);
      res.corruptions++;
      continue;
    }
    await checkL1(ctx, sn.l1TableOffset, sn.l1Size, false, fix);
  }
  inc(ctx, h.snapshotsOffset, snapshotsSize);
  inc(ctx, h.refcountTableOffset, table.length * 8);
  await checkBitmaps(ctx);
  return checkRefblocks(ctx, table, fix);
}
