/**
 * Rebuilding reference counts from the metadata (qemu's calculate_refcounts):
 * header, active and snapshot L1/L2 tables (check-l2.ts), snapshot table,
 * refcount table and blocks, bitmap directory and tables, with qemu's
 * findings and messages.
 */
import { IoError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { strerror } from '../../io/errno.js';
import { growRefs, inc, readAt, type CheckCtx, type Fix } from './check-ctx.js';
import { checkL1, offsetOf } from './check-l2.js';
import { BDRV_MAX_LENGTH, type ReftableEntry } from './check-stored.js';

/** `%#x`: `0x` prefix except for zero. */
function hexAlt(n: number): string {
  return n === 0 ? '0' : `0x${n.toString(16)}`;
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

/**
 * Qemu's cap on a checked file (qcow2_check_refcounts refuses more
 * clusters than an int holds). A repair growing the file past it would
 * leave an image no check accepts; refusing it bounds how far a hostile
 * refblock offset can grow the file (ext4 refuses earlier, at 16 TiB).
 */
const MAX_CHECK_CLUSTERS = 0x7fffffff;

/**
 * check_refblocks' repair of a refblock past the end: grow the file to
 * hold it. Returns the strerror text qemu prints when that fails
 * (then a rebuild drops the entry instead).
 */
async function growForRefblock(ctx: CheckCtx, offset: number): Promise<string | undefined> {
  const { s } = ctx;
  const cs = s.g.clusterSize;
  const end = offset + cs;
  if (end >= 2 ** 63) return 'Invalid argument'; // qemu: offset > INT64_MAX - cluster_size
  if (end > BDRV_MAX_LENGTH) {
    ctx.req.log(`offset(${BigInt(end)}) exceeds maximum(${BigInt(BDRV_MAX_LENGTH)})`, 'report');
    return strerror('EIO');
  }
  let reason = end / cs > MAX_CHECK_CLUSTERS ? strerror('EFBIG') : undefined;
  if (!reason) {
    try {
      await s.store.truncate(end);
    } catch (err) {
      if (!(err instanceof IoError)) throw err;
      reason = strerror((err.cause as NodeJS.ErrnoException | undefined)?.code ?? 'EIO');
    }
  }
  if (!reason) {
    await s.store.flush();
    return undefined;
  }
  // qemu's file driver reports the failure itself before the check does.
  ctx.req.log(`Could not resize file: ${reason}`, 'report');
  return reason;
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
        const failed = await growForRefblock(ctx, offset);
        if (failed) {
          ctx.req.log(`ERROR could not resize image: ${failed}`);
          rebuild = true;
          continue;
        }
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
