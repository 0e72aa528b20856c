/**
 * What a forward read of a qcow2 image still waits for, by host offset:
 * the L1 table, the L2 tables it names, the data clusters they map, and
 * the refcount structures to pass over. Each table adds its items as one
 * batch (sorted, packed in typed arrays: about 33 bytes an item), and a
 * heap merges the batches, so the next item in file order is found in
 * O(log tables) and memory follows what is pending, not the image.
 */

/** Kinds of item, in the order items at the same offset are served. */
export const ITEM = { l1: 0, l2: 1, data: 2, compressed: 3, reftable: 4, skip: 5 } as const;
export type ItemKind = (typeof ITEM)[keyof typeof ITEM];

/** One range of the file the reader wants. */
export interface Item {
  readonly kind: ItemKind;
  /** File offset. */
  readonly host: number;
  /** Bytes of the file it spans. */
  readonly length: number;
  /** The guest offset it maps (data, compressed), or the first guest byte its table maps (l2). */
  readonly guest: number;
  /** Guest bytes it maps. */
  readonly guestLength: number;
}

/** True for items that only help: the refcount table (naming what to skip) and the ranges to pass over (refcount blocks, the L1 table's unused end). */
export function isHelper(kind: ItemKind): boolean {
  return kind === ITEM.reftable || kind === ITEM.skip;
}

class Batch {
  readonly host: Float64Array;
  readonly length: Float64Array;
  readonly guest: Float64Array;
  readonly guestLength: Float64Array;
  readonly kind: Uint8Array;
  at = 0;

  constructor(items: readonly Item[]) {
    const n = items.length;
    this.host = new Float64Array(n);
    this.length = new Float64Array(n);
    this.guest = new Float64Array(n);
    this.guestLength = new Float64Array(n);
    this.kind = new Uint8Array(n);
    items.forEach((it, i) => {
      this.host[i] = it.host;
      this.length[i] = it.length;
      this.guest[i] = it.guest;
      this.guestLength[i] = it.guestLength;
      this.kind[i] = it.kind;
    });
  }

  get done(): boolean {
    return this.at >= this.host.length;
  }

  item(): Item {
    const i = this.at;
    return { kind: this.kind[i] as ItemKind, host: this.host[i]!, length: this.length[i]!, guest: this.guest[i]!, guestLength: this.guestLength[i]! };
  }
}

function before(a: Batch, b: Batch): boolean {
  const ha = a.host[a.at]!;
  const hb = b.host[b.at]!;
  return ha < hb || (ha === hb && a.kind[a.at]! < b.kind[b.at]!);
}

/** The items pending, smallest host offset first. */
export class WantQueue {
  readonly #heap: Batch[] = [];
  #needed = 0;
  #tables = 0;

  /** Items that are not helpers. */
  get needed(): number {
    return this.#needed;
  }

  /** L1 and L2 tables pending: while any is, items may still be added. */
  get tables(): number {
    return this.#tables;
  }

  /** Adds items (any order). */
  add(items: Item[]): void {
    if (items.length === 0) return;
    items.sort((a, b) => a.host - b.host || a.kind - b.kind);
    for (const it of items) this.#count(it.kind, 1);
    this.#heap.push(new Batch(items));
    this.#up(this.#heap.length - 1);
  }

  /** The next item, left in the queue. */
  peek(): Item | undefined {
    return this.#heap[0]?.item();
  }

  /** Takes the next item. */
  pop(): Item | undefined {
    const top = this.#heap[0];
    if (!top) return undefined;
    const it = top.item();
    this.#count(it.kind, -1);
    top.at++;
    if (top.done) {
      const last = this.#heap.pop()!;
      if (this.#heap.length === 0) return it;
      this.#heap[0] = last;
    }
    this.#down(0);
    return it;
  }

  #count(kind: ItemKind, d: number): void {
    if (!isHelper(kind)) this.#needed += d;
    if (kind === ITEM.l1 || kind === ITEM.l2) this.#tables += d;
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) return;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
