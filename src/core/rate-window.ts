/**
 * The rate of a growing count over a sliding window of time, so a job that
 * slows down (a cold cache, a throttled link) shows its current speed and
 * not its average since the start.
 */
export class RateWindow {
  /** Samples oldest first; the first may lie before the window, to span all of it. */
  #samples: { t: number; v: number }[] = [];
  readonly #windowMs: number;
  readonly #minSpanMs: number;

  /**
   * @param windowMs - how far back the rate looks
   * @param minSpanMs - shortest span a rate is computed over; shorter spans are noise
   */
  constructor(windowMs: number, minSpanMs: number) {
    this.#windowMs = windowMs;
    this.#minSpanMs = minSpanMs;
  }

  /** Starts again from value `v` at time `t` (ms). */
  reset(t: number, v: number): void {
    this.#samples = [{ t, v }];
  }

  /** Records value `v` at time `t`; samples are kept sparse (about eight per window). */
  record(t: number, v: number): void {
    const last = this.#samples.at(-1);
    if (last === undefined || t - last.t >= this.#windowMs / 8) this.#samples.push({ t, v });
    // Keep one sample at or before the window's start, drop the older ones.
    while (this.#samples.length > 1 && (this.#samples[1] as { t: number }).t <= t - this.#windowMs) this.#samples.shift();
  }

  /** Units per second between the window's oldest sample and `v` at `t`; 0 while the span is too short to tell. */
  rate(t: number, v: number): number {
    const base = this.#samples[0];
    if (base === undefined) return 0;
    const span = t - base.t;
    if (span < this.#minSpanMs) return 0;
    return Math.max(0, ((v - base.v) * 1000) / span);
  }
}
