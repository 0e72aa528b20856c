/**
 * Comparing rebuilt reference counts with the stored ones (qemu's
 * compare_refcounts) and checking OFLAG_COPIED in the active L1 and L2
 * tables (check_oflag_copied), repairing what the mode allows.
 *
 * Repair order: refcount changes are written and flushed before any L1/L2
 * entry is rewritten, so a crash in between leaves at worst a leak.
 */
import { IoError } from '../../core/errors.js';
import { hex64, readAt, type CheckCtx, type Fix } from './check-scan.js';
import { readRefcount, type StoredRefcounts } from './check-stored.js';
import { HI_COMPRESSED, HI_COPIED } from './layout.js';
import type { Qcow2State } from './state.js';

/** What compare_refcounts learned besides the counts. */
export interface CompareOutcome {
  /** A used cluster has stored refcount 0: only a rebuild can fix it. */
  rebuild: boolean;
  /** Highest cluster with a stored or computed reference. */
  highest: number;
}

/** compare_refcounts over clusters `[0, ctx.refs.size)`. */
export async function compareRefcounts(ctx: CheckCtx, stored: StoredRefcounts, fix: Fix): Promise<CompareOutcome> {
  const { s, res } = ctx;
  const E = s.g.refcountBlockEntries;
  const bits = s.g.refcountBits;
  const out: CompareOutcome = { rebuild: false, highest: 0 };
  const n = ctx.refs.size;
  for (let bi = 0; bi * E < n; bi++) {
    let view: DataView | undefined;
    let failed: string | undefined;
    try {
      view = await stored.block(bi);
    } catch (err) {
      failed = err instanceof IoError ? err.message : String(err);
    }
    const end = Math.min(n, (bi + 1) * E);
    for (let i = bi * E; i < end; i++) {
      if (failed !== undefined) {
        ctx.req.log(`Can't get refcount for cluster ${i}: ${failed}`);
        res.checkErrors++;
        continue;
      }
      const r1 = view ? readRefcount(view, i - bi * E, bits) : 0;
      const r2 = ctx.refs.get(i);
      if (r1 > 0 || r2 > 0) out.highest = i;
      if (r1 === r2) continue;
      let fixing: 'leaksFixed' | 'corruptionsFixed' | undefined;
      if (r1 === 0) out.rebuild = true;
      else if (r1 > r2 && fix.leaks) fixing = 'leaksFixed';
      else if (r1 < r2 && fix.errors) fixing = 'corruptionsFixed';
      ctx.req.log(`${fixing ? 'Repairing' : r1 < r2 ? 'ERROR' : 'Leaked'} cluster ${i} refcount=${r1} reference=${r2}`);
      if (fixing) {
        await stored.set(i, r2);
        res[fixing]++;
        continue;
      }
      if (r1 < r2) res.corruptions++;
      else res.leaks++;
    }
  }
  await stored.flush();
  return out;
}

function setCopied(hi: number, on: boolean): number {
  return (on ? hi | HI_COPIED : hi & ~HI_COPIED) >>> 0;
}

/** Checks (and with `repair`, fixes) the COPIED flag of one L1 entry. */
async function l1Copied(ctx: CheckCtx, stored: StoredRefcounts, i: number, repair: boolean): Promise<void> {
  const s = ctx.s;
  const hi = s.l1.getUint32(i * 8);
  const lo = s.l1.getUint32(i * 8 + 4);
  const l2Off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
  const rc = await stored.get(Math.floor(l2Off / s.g.clusterSize));
  if ((rc === 1) === ((hi & HI_COPIED) !== 0)) return;
  ctx.res.corruptions++;
  ctx.req.log(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${hex64(hi, lo)} refcount=${rc}`);
  if (!repair) return;
  s.l1.setUint32(i * 8, setCopied(hi, rc === 1));
  await s.store.write(s.header.l1TableOffset + i * 8, s.l1Bytes.slice(i * 8, i * 8 + 8));
  await s.store.flush();
  ctx.res.corruptions--;
  ctx.res.corruptionsFixed++;
}

/** The COPIED flags of one active L2 table; returns how many entries were repaired in `table`. */
async function l2Copied(ctx: CheckCtx, stored: StoredRefcounts, table: DataView, repair: boolean): Promise<number> {
  const s = ctx.s;
  const es = s.g.l2EntrySize;
  let dirty = 0;
  for (let j = 0; j < s.g.l2Entries; j++) {
    const hi = table.getUint32(j * es);
    const lo = table.getUint32(j * es + 4);
    if (hi & HI_COMPRESSED) continue;
    const hasOffset = (hi & 0x00ffffff) !== 0 || (lo & 0xfffffe00) !== 0;
    const normal = hasOffset || (s.externalData && (hi & HI_COPIED) !== 0 && (s.g.extendedL2 || (lo & 1) === 0));
    if (!normal) continue;
    let rc = 1;
    if (!s.externalData) {
      try {
        rc = await stored.get(Math.floor(((hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0)) / s.g.clusterSize));
      } catch {
        continue; // qemu: no message, no check error (already reported)
      }
    }
    if ((rc === 1) === ((hi & HI_COPIED) !== 0)) continue;
    ctx.res.corruptions++;
    ctx.req.log(`${repair ? 'Repairing' : 'ERROR'} OFLAG_COPIED data cluster: l2_entry=${hex64(hi, lo)} refcount=${rc}`);
    if (repair) {
      table.setUint32(j * es, setCopied(hi, rc === 1));
      dirty++;
    }
  }
  return dirty;
}

/** check_oflag_copied over the active L1 table and its L2 tables. */
export async function checkOflagCopied(ctx: CheckCtx, stored: StoredRefcounts, fix: Fix): Promise<void> {
  const { s, res } = ctx;
  // With -r leaks, qemu repairs only when the refcounts are known good by now.
  const repair = fix.errors || (fix.leaks && !res.checkErrors && !res.corruptions && !res.leaks);
  for (let i = 0; i < s.l1Size; i++) {
    const hi = s.l1.getUint32(i * 8);
    const lo = s.l1.getUint32(i * 8 + 4);
    const l2Off = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
    if (!l2Off) continue;
    try {
      await l1Copied(ctx, stored, i, repair);
    } catch (err) {
      if (!(err instanceof IoError)) throw err;
      continue;
    }
    const bytes = await readAt(s.store, l2Off, s.g.l2Entries * s.g.l2EntrySize);
    const dirty = await l2Copied(ctx, stored, new DataView(bytes.buffer), repair);
    if (dirty > 0) {
      await s.store.write(l2Off, bytes);
      await s.store.flush();
      s.l2Cache.drop(l2Off);
      res.corruptions -= dirty;
      res.corruptionsFixed += dirty;
    }
  }
}

/** Number of L1 entries a pass walks (progress total). */
export function checkWork(s: Qcow2State): number {
  return s.l1Size + s.snapshots.reduce((n, sn) => n + sn.l1Size, 0);
}
