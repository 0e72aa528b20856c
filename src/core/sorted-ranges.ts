/** Ranges kept sorted by offset, none overlapping: which one holds an offset. */

/** Index of the range of `sorted` holding `offset`, or -1 (binary search: a copy or a block-status walk asks thousands of times). */
export function rangeHolding(sorted: readonly { readonly offset: number; readonly length: number }[], offset: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = sorted[mid] as { readonly offset: number; readonly length: number };
    if (offset < r.offset) hi = mid - 1;
    else if (offset >= r.offset + r.length) lo = mid + 1;
    else return mid;
  }
  return -1;
}
