/**
 * The state one qcow2 check pass shares between its steps (qemu's
 * BdrvCheckResult plus the in-memory refcount table), and the one way
 * references are counted into it (qcow2_inc_refcounts_imrt).
 */
import type { ByteStore } from '../../io/byte-store.js';
import type { CheckRequest } from '../driver.js';
import type { ComputedRefcounts } from './check-refmap.js';
import type { L2Memo } from './check-l2-memo.js';
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
  /** Largest count a refcount entry holds (refcountMax of the image's width). */
  readonly refMax: number;
  /** L1 entries walked so far, of `work` (progress). */
  done: number;
  readonly work: number;
  /**
   * What the walk of the active L2 tables keeps for the OFLAG_COPIED pass,
   * so that pass need not read them again; only when nothing can change
   * the tables in between (no repair).
   */
  memo?: L2Memo | undefined;
}

/** `%x` of a 64-bit value given as halves. */
export function hex64(hi: number, lo: number): string {
  return hi ? (hi >>> 0).toString(16) + (lo >>> 0).toString(16).padStart(8, '0') : (lo >>> 0).toString(16);
}

/**
 * Grows the computed table to hold `n` clusters. qemu's
 * realloc_refcount_array rounds only its buffer to whole clusters; the count
 * compared afterwards is exactly `n` (rounding would report stored
 * refcounts past a truncated file's end as leaks).
 */
export function growRefs(ctx: CheckCtx, n: number): void {
  if (n > ctx.refs.size) ctx.refs.size = n;
}

function overflow(ctx: CheckCtx, offset: number): void {
  ctx.req.log(`ERROR: overflow cluster offset=0x${offset.toString(16)}`);
  ctx.req.log('Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing');
  ctx.res.corruptions++;
}

function pastEnd(ctx: CheckCtx, offset: number, size: number): void {
  ctx.req.log(`ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x${size.toString(16)}`);
  ctx.res.corruptions++;
}

/** qcow2_inc_refcounts_imrt: one more reference to each cluster of `[offset, offset+size)`. */
export function inc(ctx: CheckCtx, offset: number, size: number): void {
  if (size <= 0) return;
  const cs = ctx.s.g.clusterSize;
  if (offset + size - ctx.fileSize >= cs) return pastEnd(ctx, offset, size);
  const max = ctx.refMax;
  const last = Math.floor((offset + size - 1) / cs);
  for (let k = Math.floor(offset / cs); k <= last; k++) {
    growRefs(ctx, k + 1);
    if (!ctx.refs.increment(k, max)) overflow(ctx, k * cs);
  }
}

/** {@link inc} of one whole cluster at a cluster-aligned `offset` (the per-entry case of an L2 walk). */
export function incCluster(ctx: CheckCtx, offset: number): void {
  const cs = ctx.s.g.clusterSize;
  // inc's end-of-file test with size = cs, offset aligned.
  if (offset >= ctx.fileSize) return pastEnd(ctx, offset, cs);
  const k = offset / cs;
  if (k >= ctx.refs.size) growRefs(ctx, k + 1);
  if (!ctx.refs.increment(k, ctx.refMax)) overflow(ctx, offset);
}

/** Reads `length` bytes at `offset` (zeros past the end of the file, as qemu's reads). */
export async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  if (offset <= Number.MAX_SAFE_INTEGER - length) await store.read(offset, buf);
  return buf;
}
