/**
 * The runs a read-only layer's last mapping found, for block status asked
 * run after run (a qcow2 image keeps its own; BlockDevice keeps one for
 * every other driver). Each ask used to walk from its offset to the end of
 * one run: table lookups, an extent list and several awaits, tens of
 * microseconds in JavaScript not yet compiled. One walk keeps the next runs,
 * and the asks that follow are answered from them without I/O or awaits.
 */
import type { Extent } from './driver.js';
import { rangeHolding } from '../core/sorted-ranges.js';

/** Runs one walk keeps: enough to answer the asks that follow for a while, few enough to keep a walk short. */
export const MEMO_RUNS = 64;

export class RunMemo {
  /** Runs in guest order, contiguous; all complete but maybe the last (see #openEnd). */
  #runs: readonly Extent[] = [];
  /** Index of the run the last answer came from: asks go forward, so the next one is tried first. */
  #at = 0;
  /** Where the walk stopped when its last run reached that point: the run may go on past it. */
  #openEnd = Infinity;

  /**
   * The run holding `offset`, cut to `[offset, offset+length)`; undefined
   * when the memo does not know it (or not to the end of the ask, for a
   * run the walk stopped inside). A new object each time: the memo's own
   * runs never leave it.
   */
  find(offset: number, length: number): Extent | undefined {
    const runs = this.#runs;
    let i = this.#at;
    if (!holds(runs[i], offset)) {
      i = holds(runs[i + 1], offset) ? i + 1 : rangeHolding(runs, offset);
      if (i < 0) return undefined;
      this.#at = i;
    }
    const run = runs[i] as Extent;
    // Asked past the walk's end: a fresh walk might find the run longer than the memo knows it.
    if (offset + length > this.#openEnd && run.offset + run.length === this.#openEnd) return undefined;
    return cutRun(run, offset, length);
  }

  /**
   * Keeps the runs of a walk over `[from, walkEnd)`. When the walk stopped
   * before the image's end inside a run, that run is known to `walkEnd`
   * only: it answers asks that end there at the latest.
   */
  keep(extents: readonly Extent[], walkEnd: number, virtualSize: number): void {
    const last = extents[extents.length - 1];
    const open = last !== undefined && walkEnd < virtualSize && last.offset + last.length >= walkEnd;
    this.#runs = extents;
    this.#openEnd = open ? last.offset + last.length : Infinity;
    this.#at = 0;
  }
}

/** The part of `run` (which holds `offset`) in `[offset, offset+length)`, as a new object. */
export function cutRun(run: Extent, offset: number, length: number): Extent {
  // A compressed cluster's host bytes are its unit's wherever the run starts.
  if (run.kind === 'compressed') return { ...run, offset, length: Math.min(run.offset + run.length, offset + length) - offset };
  return clipExtent(run, offset, length) as Extent;
}

function holds(run: Extent | undefined, offset: number): boolean {
  return run !== undefined && run.offset <= offset && offset < run.offset + run.length;
}

/**
 * The part of extent `e` from `offset` on, at most `length` bytes, when
 * `offset` lies inside it; undefined otherwise and for compressed extents
 * (whose host bytes are a whole unit's). Extents merge pair by pair
 * (canMerge), so the run a walk from `offset` finds ends where `e` ends.
 */
export function clipExtent(e: Extent, offset: number, length: number): Extent | undefined {
  if (e.kind === 'compressed' || offset < e.offset || offset >= e.offset + e.length) return undefined;
  const n = Math.min(e.offset + e.length, offset + length) - offset;
  const shift = offset - e.offset;
  return e.hostOffset === undefined ? { ...e, offset, length: n } : { ...e, offset, length: n, hostOffset: e.hostOffset + shift };
}
