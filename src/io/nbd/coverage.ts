/**
 * Which bytes of a read the server's chunks have filled: chunks may come in
 * any order but must never overlap, and must cover the request by the
 * final chunk. Sorted disjoint intervals, adjacent ones merged, so the
 * usual in-order chunks keep it at one entry.
 */
export class Coverage {
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  #total = 0;

  /** Bytes covered so far. */
  get total(): number {
    return this.#total;
  }

  /** Adds `[start, end)`; false when it overlaps what is already covered. */
  add(start: number, end: number): boolean {
    const s = this.#starts;
    const e = this.#ends;
    // First interval that ends after `start`.
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((e[mid] as number) <= start) lo = mid + 1;
      else hi = mid;
    }
    if (lo < s.length && (s[lo] as number) < end) return false;
    const joinLeft = lo > 0 && e[lo - 1] === start;
    const joinRight = lo < s.length && s[lo] === end;
    if (joinLeft && joinRight) {
      e[lo - 1] = e[lo] as number;
      s.splice(lo, 1);
      e.splice(lo, 1);
    } else if (joinLeft) e[lo - 1] = end;
    else if (joinRight) s[lo] = start;
    else {
      s.splice(lo, 0, start);
      e.splice(lo, 0, end);
    }
    this.#total += end - start;
    return true;
  }
}
