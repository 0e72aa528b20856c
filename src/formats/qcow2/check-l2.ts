/**
 * The L1/L2 walk of a check (qemu's check_refcounts_l1 and
 * check_refcounts_l2): every table referenced, every cluster counted, with
 * qemu's findings and messages. Tables are read ahead in batches
 * (l2-batch.ts); empty stretches of a table are skipped by a native
 * compare, and the entries left are read as two 32-bit halves, so the
 * per-entry path never touches BigInt. Only bit operations look at the
 * halves, so they may be signed.
 */
import { throwIfAborted } from '../../core/abort.js';
import { hex64, inc, incCluster, readAt, type CheckCtx, type Fix } from './check-ctx.js';
import { copiedCandidate } from './check-l2-memo.js';
import { SPAN_BYTES, zeroSpan } from './empty-run.js';
import { l1Refs, readL2Tables } from './l2-batch.js';
import { HI_COMPRESSED, HI_COPIED } from './layout.js';

/** Offset bits 9..55 of an entry (exact as a double: 47 significant bits). */
export function offsetOf(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
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

/**
 * The alignment test of one standard or zero-alloc cluster. Returns true
 * when the entry is a misaligned preallocated cluster that the mode
 * repairs (the caller zeroes it, then skips it when that worked).
 */
function misaligned(ctx: CheckCtx, w: L2Walk, offset: number, lo: number, alloc: number): boolean {
  ctx.res.corruptions++;
  const containsData = ctx.s.g.extendedL2 ? alloc !== 0 : (lo & 1) === 0;
  if (containsData) {
    ctx.req.log(`ERROR offset=${offset.toString(16)}: Data cluster is not properly aligned; L2 entry corrupted.`);
    return false;
  }
  ctx.req.log(`${w.fix.errors ? 'Repairing' : 'ERROR'} offset=${offset.toString(16)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`);
  return w.fix.errors;
}

/** The counting part of one standard or zero-alloc cluster of check_refcounts_l2. */
function countNormal(ctx: CheckCtx, w: L2Walk, offset: number): void {
  const { s, res } = ctx;
  const cs = s.g.clusterSize;
  if (w.stats) {
    res.allocatedClusters++;
    if (w.next && offset !== w.next) res.fragmentedClusters++;
    w.next = offset + cs;
  }
  if (s.externalData) return;
  if (offset % cs === 0) incCluster(ctx, offset);
  else inc(ctx, offset, cs);
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

/**
 * One entry of check_refcounts_l2 (not all zero). Returns true for a
 * misaligned preallocated cluster the caller must repair (then count, if
 * the repair fails).
 */
function checkEntry(ctx: CheckCtx, w: L2Walk, i: number, hi: number, lo: number, zero: number, alloc: number): boolean {
  const { s, res } = ctx;
  if (hi & HI_COMPRESSED) {
    compressedEntry(ctx, w, i, hi, lo, zero !== 0 || alloc !== 0);
    return false;
  }
  if (hi & 0x3f000000 || lo & 0x1fe) {
    ctx.req.log(`ERROR found l2 entry with reserved bits set: ${hex64(hi, lo)}`);
    res.corruptions++;
  }
  const hasOffset = (hi & 0x00ffffff) !== 0 || (lo & 0xfffffe00) !== 0;
  const zeroFlag = !s.g.extendedL2 && (lo & 1) !== 0;
  if (zeroFlag && !hasOffset) return false; // ZERO_PLAIN
  if (!zeroFlag && !hasOffset && !(s.externalData && hi & HI_COPIED)) {
    if (alloc !== 0) {
      res.corruptions++;
      ctx.req.log('ERROR: Unallocated cluster has non-zero subcluster allocation map');
    }
    return false;
  }
  const offset = offsetOf(hi, lo);
  if ((zero & alloc) !== 0) {
    res.corruptions++;
    ctx.req.log(`ERROR offset=${offset.toString(16)}: Allocated cluster has corrupted subcluster allocation bitmap`);
  }
  if (offset % s.g.clusterSize !== 0 && misaligned(ctx, w, offset, lo, alloc)) return true;
  countNormal(ctx, w, offset);
  return false;
}

/**
 * check_refcounts_l2 over a table's entries from byte `from` on. Stops at
 * an entry the mode repairs (a misaligned preallocated cluster) and
 * returns its byte position, or -1 at the end of the table: the walk
 * itself stays synchronous, only repairs wait for I/O.
 */
function walkL2(ctx: CheckCtx, w: L2Walk, view: DataView, from: number): number {
  const es = ctx.s.g.l2EntrySize;
  const ext = es === 16;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const memo = w.stats ? ctx.memo : undefined;
  for (let span = from - (from % SPAN_BYTES); span < bytes.length; span += SPAN_BYTES) {
    const spanEnd = Math.min(span + SPAN_BYTES, bytes.length);
    if (zeroSpan(bytes, span, spanEnd)) continue;
    for (let p = Math.max(span, from); p < spanEnd; p += es) {
      // Signed halves: small integers even before the JIT warms up, so a dense table allocates nothing per entry.
      const hi = view.getInt32(p);
      const lo = view.getInt32(p + 4);
      const zero = ext ? view.getInt32(p + 8) : 0;
      const alloc = ext ? view.getInt32(p + 12) : 0;
      if (hi === 0 && lo === 0 && zero === 0 && alloc === 0) continue;
      if (checkEntry(ctx, w, p / es, hi, lo, zero, alloc)) return p;
      if (memo && copiedCandidate(hi, lo)) memo.add(hi, lo);
    }
  }
  return -1;
}

/** check_refcounts_l2 over one table's bytes (changed in place by repairs). */
async function checkL2(ctx: CheckCtx, l2Off: number, bytes: Uint8Array, w: L2Walk): Promise<void> {
  const es = ctx.s.g.l2EntrySize;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  w.next = 0; // qemu tracks contiguity per L2 table
  for (let p = walkL2(ctx, w, view, 0); p >= 0; p = walkL2(ctx, w, view, p + es)) {
    const hi = view.getUint32(p);
    const lo = view.getUint32(p + 4);
    if (!(await zeroEntry(ctx, l2Off, view, p / es))) countNormal(ctx, w, offsetOf(hi, lo));
  }
}

/** check_refcounts_l1: the table, its L2 tables and everything they reference. */
export async function checkL1(ctx: CheckCtx, l1Off: number, l1Size: number, stats: boolean, fix: Fix): Promise<void> {
  if (!l1Size) return;
  const { s, res } = ctx;
  const cs = s.g.clusterSize;
  inc(ctx, l1Off, l1Size * 8);
  const l1 = new DataView((await readAt(s.store, l1Off, l1Size * 8)).buffer);
  const w: L2Walk = { stats, fix, next: 0 };
  const memo = stats ? ctx.memo : undefined;
  const base = ctx.done;
  // A repair writes the table being walked, which a read-ahead copy of the same table would miss.
  const tables = readL2Tables(s.store, l1Refs(l1, l1Size, offsetOf), cs, { ahead: !fix.errors });
  for await (const t of tables) {
    ctx.done = base + t.index + 1;
    throwIfAborted(ctx.req.signal);
    const hi = l1.getUint32(t.index * 8);
    const lo = l1.getUint32(t.index * 8 + 4);
    if (hi & 0x7f000000 || lo & 0x1ff) {
      ctx.req.log(`ERROR found L1 entry with reserved bits set: ${hex64(hi, lo)}`);
      res.corruptions++;
    }
    inc(ctx, t.offset, cs);
    if (t.offset % cs !== 0) {
      ctx.req.log(`ERROR l2_offset=${t.offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
      res.corruptions++;
    }
    memo?.begin(t.index, t.offset);
    await checkL2(ctx, t.offset, t.bytes, w);
    memo?.end();
    await ctx.req.logged?.(); // back-pressure: at most one table's findings wait in front of a slow reader
    ctx.req.onProgress?.(ctx.done, ctx.work);
  }
  ctx.done = base + l1Size;
}
