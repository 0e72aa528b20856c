/**
 * Splitting a byte range at multiples of a unit (cluster, block, grain,
 * table span): the one loop block-layer and driver code share for walking
 * a request unit by unit.
 */

/** One piece of a split range. */
export interface UnitPiece {
  /** First byte of the piece. */
  readonly offset: number;
  /** Its length (at least one byte). */
  readonly length: number;
  /** Its distance from the start of the range (where it sits in the request's buffer). */
  readonly pos: number;
  /** Index of the unit holding it (`floor(offset / unit)`). */
  readonly index: number;
  /** Its offset inside that unit. */
  readonly inUnit: number;
}

/**
 * The pieces of `[offset, offset+length)` cut at every multiple of `unit`
 * and, inside a unit, every `max` bytes (a bounce buffer's size), in order.
 */
export function* splitAt(offset: number, length: number, unit: number, max = Infinity): Generator<UnitPiece> {
  if (!(unit > 0) || !(max > 0)) throw new RangeError(`Invalid split unit ${unit} (max ${max})`);
  for (let pos = 0; pos < length; ) {
    const at = offset + pos;
    const index = Math.floor(at / unit);
    const inUnit = at - index * unit;
    const n = Math.min(length - pos, unit - inUnit, max);
    yield { offset: at, length: n, pos, index, inUnit };
    pos += n;
  }
}
