/**
 * The runs a read-only image's last table walk found, for block status
 * asked run after run. Each ask used to walk from its offset to the end of
 * one run: a table lookup, a DataView, an extent list and several awaits,
 * tens of microseconds in JavaScript not yet compiled, once per compressed
 * cluster. One walk now keeps the next runs, and the asks that follow are
 * answered from them without I/O or awaits.
 */
import type { Extent } from '../driver.js';
import { rangeHolding } from '../../core/sorted-ranges.js';
import { clipExtent } from './cluster.js';

/** Runs one walk keeps: enough to answer the asks that follow for a while, few enough to keep a walk short. */
export const MEMO_RUNS = 64;

export class RunMemo {
  /** Complete runs, contiguous and in guest order. */
  #runs: readonly Extent[] = [];
  /** Index of the run the last answer came from: asks go forward, so the next one is tried first. */
  #at = 0;

  /**
   * The run holding `offset`, cut to `[offset, offset+length)`; undefined
   * when the memo does not know it. A new object each time: the memo's own
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
    return cutRun(runs[i] as Extent, offset, length);
  }

  /**
   * Keeps the complete runs of a walk over `[from, askedEnd)`: all of them
   * when the walk reached the image's end, else all but one that ends where
   * the ask ended (the run may go on past it).
   */
  keep(extents: readonly Extent[], askedEnd: number, virtualSize: number): void {
    const last = extents[extents.length - 1];
    const cut = last !== undefined && askedEnd < virtualSize && last.offset + last.length >= askedEnd;
    this.#runs = cut ? extents.slice(0, -1) : extents;
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
