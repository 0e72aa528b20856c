/**
 * Comparing rebuilt reference counts with the stored ones (qemu's
 * compare_refcounts), repairing what the mode allows.
 *
 * Repair order: refcount changes are written and flushed before any L1/L2
 * entry is rewritten (check-copied.ts), so a crash in between leaves at
 * worst a leak.
 */
import { IoError } from '../../core/errors.js';
import type { CheckCtx, Fix } from './check-ctx.js';
import { readRefcount, type StoredRefcounts } from './check-stored.js';
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
      if (!view) {
        // No refblock: every stored count is 0, so only referenced clusters can differ.
        i = ctx.refs.nextUsed(i, end);
        if (i >= end) break;
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
    await ctx.req.logged?.(); // back-pressure: at most one refcount block's findings wait in front of a slow reader
  }
  await stored.flush();
  return out;
}

/** Number of L1 entries a pass walks (progress total). */
export function checkWork(s: Qcow2State): number {
  return s.l1Size + s.snapshots.reduce((n, sn) => n + sn.l1Size, 0);
}
