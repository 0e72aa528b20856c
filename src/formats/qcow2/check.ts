/**
 * qcow2 check and repair (qemu's qcow2_co_check_locked and
 * qcow2_check_refcounts): rebuild the reference counts from the metadata,
 * compare them with the stored ones, check OFLAG_COPIED, repair what the
 * mode allows, rebuild the refcount structures when they are broken, and
 * clear the dirty and corrupt bits once nothing is left.
 */
import { IoError, UnsupportedError } from '../../core/errors.js';
import type { CheckCounts, CheckRequest, ImageChecker, OpenOptions } from '../driver.js';
import { checkWork, compareRefcounts } from './check-compare.js';
import { checkOflagCopied } from './check-copied.js';
import { rebuildRefcountStructure } from './check-rebuild.js';
import { emptyResult, type CheckCtx, type CheckResult, type Fix } from './check-ctx.js';
import { L2Memo } from './check-l2-memo.js';
import { ComputedRefcounts } from './check-refmap.js';
import { calculateRefcounts } from './check-scan.js';
import { checkSnapshotEntries, rewriteSnapshotTable } from './check-snapshots.js';
import { StoredRefcounts } from './check-stored.js';
import { HEADER_FIELD } from './header.js';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from './layout.js';
import { refcountMax } from './refcount.js';
import type { Qcow2State } from './state.js';

async function newCtx(s: Qcow2State, req: CheckRequest): Promise<CheckCtx> {
  const fileSize = await s.store.size();
  const cs = s.g.clusterSize;
  const nb = Math.ceil(fileSize / cs);
  if (nb > 0x7fffffff) throw new UnsupportedError('File too large', { errno: 27 });
  // Without repair nothing changes the L2 tables between the walk and the OFLAG_COPIED pass.
  const memo = req.repair === 'none' ? new L2Memo() : undefined;
  return { s, res: emptyResult(), req, fileSize, refs: new ComputedRefcounts(nb), refMax: refcountMax(s.g.refcountBits), done: 0, work: checkWork(s), memo };
}

function loadStored(s: Qcow2State): Promise<StoredRefcounts> {
  return StoredRefcounts.load(s.store, s.g, s.header.refcountTableOffset, s.header.refcountTableClusters);
}

/** After a rebuild: recount against the new structures and free the old ones (leaks). */
async function afterRebuild(ctx: CheckCtx, fix: Fix, old: CheckResult): Promise<number> {
  const { res } = ctx;
  res.corruptions = 0;
  res.leaks = 0;
  ctx.refs.clear();
  ctx.fileSize = await ctx.s.store.size();
  const stored = await loadStored(ctx.s);
  await calculateRefcounts(ctx, stored.table, { leaks: false, errors: false });
  let fresh = 0;
  let highest = 0;
  if (fix.leaks) {
    const saved = ctx.res;
    ctx.res = emptyResult();
    const cmp = await compareRefcounts(ctx, stored, { leaks: true, errors: false });
    highest = cmp.highest;
    if (cmp.rebuild) ctx.req.log('ERROR rebuilt refcount structure is still broken');
    fresh = ctx.res.leaks;
    ctx.res = saved;
  }
  if (ctx.res.corruptions < old.corruptions) ctx.res.corruptionsFixed += old.corruptions - ctx.res.corruptions;
  if (ctx.res.leaks < old.leaks) ctx.res.leaksFixed += old.leaks - ctx.res.leaks;
  ctx.res.leaks += fresh;
  return highest;
}

/** qcow2_check_refcounts. */
async function checkRefcounts(ctx: CheckCtx, fix: Fix): Promise<void> {
  let stored = await loadStored(ctx.s);
  let rebuild = await calculateRefcounts(ctx, stored.table, fix);
  const pre = { ...ctx.res };
  const cmp = await compareRefcounts(ctx, stored, { leaks: false, errors: false });
  rebuild ||= cmp.rebuild;
  let highest = cmp.highest;
  if (rebuild && fix.errors) {
    const old = { ...ctx.res };
    ctx.req.log('Rebuilding refcount structure');
    await rebuildRefcountStructure(ctx);
    const h = await afterRebuild(ctx, fix, old);
    if (fix.leaks) highest = h;
    stored = await loadStored(ctx.s);
  } else if (fix.leaks || fix.errors) {
    if (rebuild) {
      ctx.req.log('ERROR need to rebuild refcount structures');
      ctx.res.checkErrors++;
      throw new IoError('Input/output error', { data: { partial: ctx.res } });
    }
    if (ctx.res.leaks || ctx.res.corruptions) {
      ctx.res = pre;
      highest = (await compareRefcounts(ctx, stored, fix)).highest;
    }
  }
  await checkOflagCopied(ctx, stored, fix);
  ctx.res.imageEndOffset = (highest + 1) * ctx.s.g.clusterSize;
}

async function clearBit(s: Qcow2State, bit: number): Promise<void> {
  if ((s.header.incompatible & BigInt(bit)) === 0n) return;
  await s.store.flush();
  s.header.incompatible &= ~BigInt(bit);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, s.header.incompatible);
  await s.store.write(HEADER_FIELD.incompatible, b);
  await s.store.flush();
}

/**
 * One check pass (qcow2_co_check_locked). Damage comes back as counts; a
 * thrown error means the check could not complete.
 */
async function checkQcow2(s: Qcow2State, req: CheckRequest): Promise<CheckCounts> {
  const fix: Fix = { leaks: req.repair !== 'none', errors: req.repair === 'all' };
  if (req.repair !== 'none' && s.store.readOnly) throw new UnsupportedError('Repairing needs the image opened read/write');
  const ctx = await newCtx(s, req);
  ctx.res.totalClusters = Math.ceil(s.virtualSize / s.g.clusterSize);
  const badEntries = checkSnapshotEntries(s, req, fix.errors);
  await checkRefcounts(ctx, fix);
  const r = ctx.res;
  // Rewriting the table allocates clusters, so it waits for repaired refcounts.
  if (badEntries && fix.errors) {
    await rewriteSnapshotTable(s);
    r.corruptionsFixed += badEntries;
  } else {
    r.corruptions += badEntries;
  }
  // Deliberately stricter than QEMU, which clears the dirty bit whenever it
  // closes a writable image: refcounts still wrong after `-r leaks` would
  // let the next writer allocate over live data; kept dirty, its open repairs them.
  if (req.repair !== 'none' && r.checkErrors === 0 && r.corruptions === 0) {
    await clearBit(s, INCOMPAT_DIRTY);
    await clearBit(s, INCOMPAT_CORRUPT);
  }
  return { ...r };
}

/** The checker a qcow2 image exposes. */
export class Qcow2Checker implements ImageChecker {
  readonly canRepair = true;
  readonly #s: Qcow2State;

  constructor(s: Qcow2State) {
    this.#s = s;
  }

  check(request: CheckRequest): Promise<CheckCounts> {
    return checkQcow2(this.#s, request);
  }
}

/**
 * What a read/write open of a dirty image does first (qcow2_do_open):
 * a full check with repair, which clears the dirty bit when nothing is left.
 * Its lines go to `onWarning` (QEMU prints them on stderr).
 *
 * @throws {IoError} "Could not repair dirty image: Input/output error"
 */
export async function repairDirtyImage(s: Qcow2State, onWarning?: OpenOptions['onWarning']): Promise<void> {
  const log = (line: string, kind?: 'report'): void => onWarning?.({ code: kind === 'report' ? 'repair-report' : 'repair-log', message: line });
  let counts: CheckCounts;
  try {
    counts = await checkQcow2(s, { repair: 'all', log });
  } catch (err) {
    throw new IoError('Could not repair dirty image: Input/output error', { cause: err });
  }
  if (counts.checkErrors) throw new IoError('Could not repair dirty image: Input/output error');
}
