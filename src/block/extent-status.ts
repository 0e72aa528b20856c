/**
 * From one layer's extents to reads and block status: the pure steps
 * BlockDevice takes between a driver's mapping and its callers.
 */
import { CorruptImageError } from '../core/errors.js';
import type { CompressedExtent, Extent, UnallocatedExtent } from '../formats/driver.js';
import type { BlockStatus } from './block-status.js';
import type { Mutable } from '../core/mutable.js';

/** The compressed extents from `extents[i]` on, up to the first of another kind, each checked like any extent. */
export function compressedRun(extents: readonly Extent[], i: number, offset: number, length: number): { extents: CompressedExtent[]; length: number } {
  const run: CompressedExtent[] = [];
  let n = 0;
  for (let k = i; k < extents.length; k++) {
    const e = extents[k] as Extent;
    if (e.kind !== 'compressed') break;
    checkExtent(e, offset + n, length - n);
    run.push(e);
    n += e.length;
  }
  return { extents: run, length: n };
}

/**
 * What a layer's allocated extent says, refined by the host file's holes
 * where qemu recurses (`recurse`: what the layer's `recurseHostStatus`
 * answered; data extents may ask for it themselves).
 */
export function layerStatus(e: Exclude<Extent, { kind: 'unallocated' }>, depth: number, recurse: boolean): BlockStatus | Promise<BlockStatus> {
  const st = extentStatus(e, depth);
  return e.kind === 'data' && (recurse || e.recurse === true) ? refineByHost(st) : st;
}

/** qemu's answer for drivers without block status: all allocated data, no host offset. */
export function opaqueStatus(offset: number, length: number, depth: number): BlockStatus {
  return { offset, length, zero: false, data: true, present: true, compressed: false, depth };
}

/**
 * Data whose host bytes sit in a hole of the host file reads as zeros: say
 * so (and stop the run where the hole ends), as qemu's block status asks the
 * protocol layer below a format.
 */
async function refineByHost(st: BlockStatus): Promise<BlockStatus> {
  if (!st.data || st.zero || st.compressed || !st.store?.extents || st.hostOffset === undefined) return st;
  const host = (await st.store.extents(st.hostOffset, st.length))?.[0];
  if (!host || host.offset !== st.hostOffset || host.length <= 0) return st;
  return { ...st, length: Math.min(st.length, host.length), zero: !host.data || host.zero === true };
}

/** A run no layer holds, as the layer at `depth` (the last one asked) reports it. */
export function unallocatedStatus(e: UnallocatedExtent, depth: number, pastBackingEnd: boolean): BlockStatus {
  const st: Mutable<BlockStatus> = { offset: e.offset, length: e.length, zero: e.unknownContent !== true, data: false, present: false, compressed: false, depth };
  if (e.hostOffset !== undefined && e.store) {
    st.store = e.store;
    st.hostOffset = e.hostOffset;
  }
  if (pastBackingEnd) st.pastBackingEnd = true;
  return st;
}

/** An allocated extent's status as the layer says it, before any look at the host file. */
export function extentStatus(e: Exclude<Extent, { kind: 'unallocated' }>, depth: number): BlockStatus {
  // Object literals, not spreads: block status runs once per extent, tens of thousands of times in a walk.
  switch (e.kind) {
    case 'data':
      if (e.opaque) return { offset: e.offset, length: e.length, zero: false, data: true, present: true, compressed: false, depth };
      return { offset: e.offset, length: e.length, zero: false, data: true, present: true, compressed: false, depth, store: e.store, hostOffset: e.hostOffset };
    case 'zero':
      return { offset: e.offset, length: e.length, zero: true, data: false, present: true, compressed: false, depth, store: e.allocated ? e.store : undefined, hostOffset: e.allocated ? e.hostOffset : undefined };
    case 'compressed':
      return { offset: e.offset, length: e.length, zero: false, data: true, present: true, compressed: true, depth };
  }
}

/** Drivers are trusted code but their output decides reads: a bad extent is a bug, stop loudly. */
export function checkExtent(e: Extent, offset: number, maxLength: number): void {
  if (e.offset !== offset || !(e.length > 0) || e.length > maxLength) {
    throw new CorruptImageError(`Inconsistent mapping: expected an extent at ${offset} of at most ${maxLength} bytes, got [${e.offset}, +${e.length})`);
  }
}
