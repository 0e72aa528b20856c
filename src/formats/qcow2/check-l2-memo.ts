/**
 * What a check's walk of the active L2 tables keeps for the later
 * OFLAG_COPIED pass (check_oflag_copied), so that pass does not read every
 * L2 table a second time: per table, only the entries that pass looks at
 * (not compressed, with an offset or the COPIED flag), as raw halves.
 * Bounded: past MAX_ENTRIES it stops recording, and the tables it did not
 * record are read again. Pure; no I/O.
 */
import { HI_COMPRESSED, HI_COPIED } from './layout.js';

/** Entries kept at most (8 bytes each). */
const MAX_ENTRIES = 2 * 1024 * 1024;

/** True for an entry check_oflag_copied may look at. */
export function copiedCandidate(hi: number, lo: number): boolean {
  return (hi & HI_COMPRESSED) === 0 && ((hi & (0x00ffffff | HI_COPIED)) !== 0 || (lo & 0xfffffe00) !== 0);
}

/** The recorded entries of the active L2 tables, in L1 order. */
export class L2Memo {
  /** Per recorded table: L1 index, offset, end of its entries in `#pairs`. */
  #tables = new Float64Array(3 * 256);
  #nTables = 0;
  #pairs = new Uint32Array(2 * 1024);
  #count = 0;
  #recording = false;
  #full = false;
  /** Lookup positions: one for the reader running ahead ({@link has}), one for the pass ({@link take}). */
  #ahead = 0;
  #taken = 0;
  readonly #max: number;

  /** `maxEntries`: the budget in 8-byte units (a table's own record costs 3). */
  constructor(maxEntries = MAX_ENTRIES) {
    this.#max = maxEntries;
  }

  /** Starts recording the table of L1 entry `index` at `offset` (in increasing `index` order). */
  begin(index: number, offset: number): void {
    if (this.#full) return;
    if (!this.#fits()) return this.#stop();
    if (this.#nTables * 3 >= this.#tables.length) this.#tables = grow(this.#tables);
    this.#tables[this.#nTables * 3] = index;
    this.#tables[this.#nTables * 3 + 1] = offset;
    this.#recording = true;
  }

  /** Records one entry of the table begun last; past the budget the table is dropped and recording stops. */
  add(hi: number, lo: number): void {
    if (!this.#recording) return;
    if (!this.#fits()) {
      this.#count = this.#nTables ? this.#tables[this.#nTables * 3 - 1]! : 0;
      return this.#stop();
    }
    if (this.#count * 2 >= this.#pairs.length) this.#pairs = grow(this.#pairs);
    this.#pairs[this.#count * 2] = hi;
    this.#pairs[this.#count * 2 + 1] = lo;
    this.#count++;
  }

  /** Ends the table begun last. */
  end(): void {
    if (!this.#recording) return;
    this.#tables[this.#nTables * 3 + 2] = this.#count;
    this.#nTables++;
    this.#recording = false;
  }

  /** True when the table of L1 entry `index` at `offset` was recorded (asked in increasing `index` order). */
  has(index: number, offset: number): boolean {
    this.#ahead = this.#seek(this.#ahead, index);
    return this.#at(this.#ahead, index, offset);
  }

  /**
   * The recorded entries (hi, lo pairs) of the table of L1 entry `index` at
   * `offset`, or undefined when it was not recorded (asked in increasing
   * `index` order).
   */
  take(index: number, offset: number): Uint32Array | undefined {
    const c = (this.#taken = this.#seek(this.#taken, index));
    if (!this.#at(c, index, offset)) return undefined;
    return this.#pairs.subarray(c === 0 ? 0 : this.#tables[c * 3 - 1]! * 2, this.#tables[c * 3 + 2]! * 2);
  }

  #fits(): boolean {
    return this.#count + 3 * (this.#nTables + 1) < this.#max;
  }

  #stop(): void {
    this.#full = true;
    this.#recording = false;
  }

  #seek(from: number, index: number): number {
    let c = from;
    while (c < this.#nTables && this.#tables[c * 3]! < index) c++;
    return c;
  }

  #at(c: number, index: number, offset: number): boolean {
    return c < this.#nTables && this.#tables[c * 3] === index && this.#tables[c * 3 + 1] === offset;
  }
}

function grow<T extends Float64Array | Uint32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}
