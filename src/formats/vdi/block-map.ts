/**
 * The VDI block map: one little-endian u32 per guest block, the index of
 * the image block holding it (data at offset_data + index × block size),
 * or 0xFFFFFFFF (never allocated) / 0xFFFFFFFE (discarded: reads zeros).
 * Pure functions; the map itself is read in pages (./paged-map.ts), so
 * checks take it a chunk at a time ({@link BlockMapCheck}).
 */

/** A block that was never allocated. */
export const VDI_UNALLOCATED = 0xffffffff;
/** A discarded block: reads as zeros. */
export const VDI_DISCARDED = 0xfffffffe;

/** True when the entry points at an image block. */
export function isAllocated(entry: number): boolean {
  return entry < VDI_DISCARDED;
}

/** Decodes `count` little-endian u32 entries. */
export function parseBlockMap(bytes: Uint8Array, count: number): Uint32Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = v.getUint32(i * 4, true);
  return out;
}

/** One inconsistency in a block map. */
export type BlockMapFinding =
  | { readonly kind: 'index-too-large'; readonly block: number; readonly entry: number; readonly message: string }
  | { readonly kind: 'duplicate'; readonly block: number; readonly entry: number; readonly message: string }
  | { readonly kind: 'allocated-mismatch'; readonly counted: number; readonly header: number; readonly message: string }
  | { readonly kind: 'beyond-allocated'; readonly block: number; readonly entry: number; readonly message: string };

/** What a block-map check found. */
export interface BlockMapReport {
  /** Entries that point at an image block. */
  readonly allocated: number;
  /** Corruptions, in QEMU's check order and wording. */
  readonly findings: readonly BlockMapFinding[];
}

/** Options of a block-map check. */
export interface BlockMapCheckOptions {
  /** Also require every entry below `blocksAllocated` (new blocks go at index `blocksAllocated`). */
  readonly forWrite?: boolean | undefined;
  /** Messages kept (counting goes on); default 100. */
  readonly maxFindings?: number | undefined;
  /** Receives every finding as it is made, which is then not kept (a check's findings can number millions). */
  readonly onFinding?: ((f: BlockMapFinding) => void) | undefined;
}

/**
 * Validates a block map as `qemu-img check` does for VDI, fed in order a
 * chunk at a time: every allocated entry below `blocksInImage`, no image
 * block used twice, and the count of allocated entries equal to the
 * header's `blocks_allocated`. Memory: one bit per image block.
 */
export class BlockMapCheck {
  readonly #blocksInImage: number;
  readonly #blocksAllocated: number;
  readonly #forWrite: boolean;
  readonly #max: number;
  readonly #used: Uint8Array;
  readonly #findings: BlockMapFinding[] = [];
  readonly #onFinding: ((f: BlockMapFinding) => void) | undefined;
  #found = 0;
  #allocated = 0;

  constructor(blocksInImage: number, blocksAllocated: number, options: BlockMapCheckOptions = {}) {
    this.#blocksInImage = blocksInImage;
    this.#blocksAllocated = blocksAllocated;
    this.#forWrite = options.forWrite === true;
    this.#max = options.maxFindings ?? 100;
    this.#onFinding = options.onFinding;
    this.#used = new Uint8Array(Math.ceil(blocksInImage / 8));
  }

  /** Number of findings so far (also those past `maxFindings`). */
  get found(): number {
    return this.#found;
  }

  #add(f: BlockMapFinding): void {
    this.#found++;
    if (this.#onFinding) this.#onFinding(f);
    else if (this.#findings.length < this.#max) this.#findings.push(f);
  }

  /** Checks `entries`, the map entries of blocks `first`, `first + 1`, … */
  add(entries: Uint32Array, first: number): void {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as number;
      if (!isAllocated(entry)) continue;
      const block = first + i;
      if (entry >= this.#blocksInImage) {
        this.#add({ kind: 'index-too-large', block, entry, message: `block index ${block} too large, is ${entry}` });
        continue;
      }
      this.#allocated++;
      const bit = 1 << (entry & 7);
      if ((this.#used[entry >>> 3] as number) & bit) {
        this.#add({ kind: 'duplicate', block, entry, message: `block index ${entry} also used by ${entry}` }); // qemu's wording, quirk included
        continue;
      }
      this.#used[entry >>> 3] = (this.#used[entry >>> 3] as number) | bit;
      if (this.#forWrite && entry >= this.#blocksAllocated) {
        this.#add({ kind: 'beyond-allocated', block, entry, message: `block ${block} points at image block ${entry}, beyond the ${this.#blocksAllocated} blocks the header counts as allocated` });
      }
    }
  }

  /** The report, with the allocated-count comparison last, as qemu orders it. */
  finish(): BlockMapReport {
    const allocated = this.#allocated;
    if (allocated !== this.#blocksAllocated) {
      this.#add({ kind: 'allocated-mismatch', counted: allocated, header: this.#blocksAllocated, message: `allocated blocks mismatch, is ${allocated}, should be ${this.#blocksAllocated}` });
    }
    return { allocated, findings: this.#findings };
  }
}

/** {@link BlockMapCheck} over a whole map in memory. */
export function checkBlockMap(map: Uint32Array, blocksInImage: number, blocksAllocated: number, options: BlockMapCheckOptions = {}): BlockMapReport {
  const check = new BlockMapCheck(blocksInImage, blocksAllocated, options);
  check.add(map, 0);
  return check.finish();
}
