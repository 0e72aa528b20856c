/**
 * Checking OFLAG_COPIED in the active L1 and L2 tables against the stored
 * refcounts (qemu's check_oflag_copied), repairing what the mode allows.
 * Runs after the refcounts are compared (and repaired), so a crash between
 * the two leaves at worst a leak.
 *
 * Without repair, the L2 entries come from what the walk kept
 * (check-l2-memo.ts) and only tables it did not keep are read again.
 */
import { IoError } from '../../core/errors.js';
import { hex64, type CheckCtx, type Fix } from './check-ctx.js';
import { offsetOf } from './check-l2.js';
import type { StoredRefcounts } from './check-stored.js';
import { SPAN_BYTES, zeroSpan } from './empty-run.js';
import { readL2Tables, type L2Ref } from './l2-batch.js';
import { HI_COMPRESSED, HI_COPIED } from './layout.js';

function setCopied(hi: number, on: boolean): number {
  return (on ? hi | HI_COPIED : hi & ~HI_COPIED) >>> 0;
}

/**
 * Checks (and with `repair`, fixes) the COPIED flag of L1 entry `i`.
 * Waits only when the refblock must be read or the entry rewritten.
 *
 * @throws {IoError} when the L2 cluster's refcount cannot be read or the repair cannot be written
 */
function l1Copied(ctx: CheckCtx, stored: StoredRefcounts, i: number, repair: boolean): Promise<void> | undefined {
  const s = ctx.s;
  const cluster = Math.floor(offsetOf(s.l1.getUint32(i * 8), s.l1.getUint32(i * 8 + 4)) / s.g.clusterSize);
  const rc = stored.peek(cluster);
  if (rc === undefined) return stored.get(cluster).then((n) => l1Judge(ctx, i, n, repair));
  return l1Judge(ctx, i, rc, repair);
}

function l1Judge(ctx: CheckCtx, i: number, rc: number, repair: boolean): Promise<void> | undefined {
  const s = ctx.s;
  const hi = s.l1.getUint32(i * 8);
  const lo = s.l1.getUint32(i * 8 + 4);
  if ((rc === 1) === ((hi & HI_COPIED) !== 0)) return undefined;
  ctx.res.corruptions++;
  ctx.req.log(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${hex64(hi, lo)} refcount=${rc}`);
  return repair ? l1Repair(ctx, i, rc) : undefined;
}

async function l1Repair(ctx: CheckCtx, i: number, rc: number): Promise<void> {
  const s = ctx.s;
  s.l1.setUint32(i * 8, setCopied(s.l1.getUint32(i * 8), rc === 1));
  await s.store.write(s.header.l1TableOffset + i * 8, s.l1Bytes.slice(i * 8, i * 8 + 8));
  await s.store.flush();
  ctx.res.corruptions--;
  ctx.res.corruptionsFixed++;
}

/** The host cluster whose refcount decides a data entry's COPIED flag; -1: not a data entry, -2: external data (refcount 1). */
function dataCluster(ctx: CheckCtx, hi: number, lo: number): number {
  const s = ctx.s;
  if (hi & HI_COMPRESSED) return -1;
  const hasOffset = (hi & 0x00ffffff) !== 0 || (lo & 0xfffffe00) !== 0;
  const normal = hasOffset || (s.externalData && (hi & HI_COPIED) !== 0 && (s.g.extendedL2 || (lo & 1) === 0));
  if (!normal) return -1;
  return s.externalData ? -2 : Math.floor(offsetOf(hi, lo) / s.g.clusterSize);
}

/** Reports a wrong COPIED flag of data entry (`hi`, `lo`) whose cluster has refcount `rc`; true when `repair` asks the caller to flip it. */
function judge(ctx: CheckCtx, hi: number, lo: number, rc: number, repair: boolean): boolean {
  if ((rc === 1) === ((hi & HI_COPIED) !== 0)) return false;
  ctx.res.corruptions++;
  ctx.req.log(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED data cluster: l2_entry=${hex64(hi, lo)} refcount=${rc}`);
  return repair;
}

/**
 * The COPIED flag of one entry (`hi`, `lo`), without waiting: true when it
 * is wrong and `repair` asks the caller to flip it; undefined when the
 * refblock must be read first ({@link entryCopiedRead}).
 */
function entryCopied(ctx: CheckCtx, stored: StoredRefcounts, hi: number, lo: number, repair: boolean): boolean | undefined {
  const cluster = dataCluster(ctx, hi, lo);
  if (cluster === -1) return false;
  const rc = cluster === -2 ? 1 : stored.peek(cluster);
  return rc === undefined ? undefined : judge(ctx, hi, lo, rc, repair);
}

/** {@link entryCopied} for an entry whose refblock must be read. */
async function entryCopiedRead(ctx: CheckCtx, stored: StoredRefcounts, hi: number, lo: number, repair: boolean): Promise<boolean> {
  let rc: number;
  try {
    rc = await stored.get(dataCluster(ctx, hi, lo));
  } catch {
    return false; // qemu: no message, no check error (already reported)
  }
  return judge(ctx, hi, lo, rc, repair);
}

/** The COPIED flags of one active L2 table; returns how many entries were repaired in `table`. */
async function l2Copied(ctx: CheckCtx, stored: StoredRefcounts, table: Uint8Array, repair: boolean): Promise<number> {
  const es = ctx.s.g.l2EntrySize;
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  let dirty = 0;
  for (let span = 0; span < table.length; span += SPAN_BYTES) {
    const spanEnd = Math.min(span + SPAN_BYTES, table.length);
    if (zeroSpan(table, span, spanEnd)) continue;
    for (let p = span; p < spanEnd; p += es) {
      const hi = view.getInt32(p); // signed: see check-l2.ts
      const lo = view.getInt32(p + 4);
      if (!(entryCopied(ctx, stored, hi, lo, repair) ?? (await entryCopiedRead(ctx, stored, hi, lo, repair)))) continue;
      view.setUint32(p, setCopied(hi, (hi & HI_COPIED) === 0));
      dirty++;
    }
  }
  return dirty;
}

/**
 * l2Copied over the entries the walk kept (hi, lo pairs; only without
 * repair), from pair `from` on: returns the pair whose refblock must be
 * read first, or -1 when done.
 */
function keptCopied(ctx: CheckCtx, stored: StoredRefcounts, pairs: Uint32Array, from: number): number {
  for (let k = from; k < pairs.length; k += 2) {
    if (entryCopied(ctx, stored, pairs[k]!, pairs[k + 1]!, false) === undefined) return k;
  }
  return -1;
}

/**
 * The L2 tables of the active L1 that the pass reads: not kept by the
 * walk, and not skipped because the L2 cluster's own refcount cannot be
 * read (as qemu, which then never reads the table).
 */
function* toRead(ctx: CheckCtx, stored: StoredRefcounts): Generator<L2Ref, void, undefined> {
  const { s, memo } = ctx;
  for (let i = 0; i < s.l1Size; i++) {
    const offset = offsetOf(s.l1.getUint32(i * 8), s.l1.getUint32(i * 8 + 4));
    if (offset && !memo?.has(i, offset) && stored.usable(Math.floor(offset / s.g.clusterSize))) yield { index: i, offset };
  }
}

/** check_oflag_copied over the active L1 table and its L2 tables. */
export async function checkOflagCopied(ctx: CheckCtx, stored: StoredRefcounts, fix: Fix): Promise<void> {
  const { s, res, memo } = ctx;
  // With -r leaks, qemu repairs only when the refcounts are known good by now.
  const repair = fix.errors || (fix.leaks && !res.checkErrors && !res.corruptions && !res.leaks);
  // A repair writes L1 entries and L2 tables as it goes: then each table is read only when its turn comes.
  const tables = readL2Tables(s.store, toRead(ctx, stored), s.g.clusterSize, { ahead: !repair });
  try {
    for (let i = 0; i < s.l1Size; i++) {
      const l2Off = offsetOf(s.l1.getUint32(i * 8), s.l1.getUint32(i * 8 + 4));
      if (!l2Off) continue;
      const kept = memo?.take(i, l2Off);
      let failed = false;
      try {
        const pending = l1Copied(ctx, stored, i, repair);
        if (pending) await pending;
      } catch (err) {
        if (!(err instanceof IoError)) throw err;
        failed = true;
      }
      if (kept) {
        if (failed) continue;
        for (let k = keptCopied(ctx, stored, kept, 0); k >= 0; k = keptCopied(ctx, stored, kept, k + 2)) {
          await entryCopiedRead(ctx, stored, kept[k]!, kept[k + 1]!, false);
        }
        continue;
      }
      if (!stored.usable(Math.floor(l2Off / s.g.clusterSize))) continue; // l1Copied failed; toRead skipped it too
      const t = await tables.next();
      if (t.done || t.value.index !== i) throw new Error('OFLAG_COPIED pass out of step with its L2 reads');
      if (failed) continue;
      const dirty = await l2Copied(ctx, stored, t.value.bytes, repair);
      if (dirty > 0) {
        await s.store.write(l2Off, t.value.bytes);
        await s.store.flush();
        s.l2Cache.drop(l2Off);
        res.corruptions -= dirty;
        res.corruptionsFixed += dirty;
      }
    }
  } finally {
    await tables.return();
  }
}
