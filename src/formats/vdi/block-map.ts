/**
 * The VDI block map: one little-endian u32 per guest block, the index of
 * the image block holding it (data at offset_data + index × block size),
 * or 0xFFFFFFFF (never allocated) / 0xFFFFFFFE (discarded: reads zeros).
 * Pure functions, so a future `check` can reuse {@link checkBlockMap}.
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
  | { readonly kind: 'duplicate'; readonly block: number; readonly entry: number; readonly firstBlock: number; readonly message: string }
  | { readonly kind: 'allocated-mismatch'; readonly counted: number; readonly header: number; readonly message: string }
  | { readonly kind: 'beyond-allocated'; readonly block: number; readonly entry: number; readonly message: string };

/** What {@link checkBlockMap} found. */
export interface BlockMapReport {
  /** Entries that point at an image block. */
  readonly allocated: number;
  /** Corruptions, in QEMU's check order and wording. */
  readonly findings: readonly BlockMapFinding[];
}

/**
 * Validates a block map as `qemu-img check` does for VDI: every allocated
 * entry below `blocksInImage`, no image block used twice, and the count of
 * allocated entries equal to the header's `blocks_allocated`. With
 * `forWrite`, also every entry below `blocksAllocated` (new blocks go at
 * index `blocksAllocated`, so a higher entry would be overwritten).
 * Memory: one u32 per block (the map's own size). Stops collecting
 * messages after `maxFindings` but keeps counting.
 */
export function checkBlockMap(map: Uint32Array, blocksInImage: number, blocksAllocated: number, options: { forWrite?: boolean; maxFindings?: number } = {}): BlockMapReport {
  const max = options.maxFindings ?? 100;
  const findings: BlockMapFinding[] = [];
  const add = (f: BlockMapFinding): void => {
    if (findings.length < max) findings.push(f);
  };
  const owner = new Uint32Array(blocksInImage).fill(VDI_UNALLOCATED);
  let allocated = 0;
  for (let block = 0; block < map.length; block++) {
    const entry = map[block] as number;
    if (!isAllocated(entry)) continue;
    if (entry >= blocksInImage) {
      add({ kind: 'index-too-large', block, entry, message: `block index ${block} too large, is ${entry}` });
      continue;
    }
    allocated++;
    const first = owner[entry] as number;
    if (first !== VDI_UNALLOCATED) {
      add({ kind: 'duplicate', block, entry, firstBlock: first, message: `block index ${entry} also used by ${entry}` }); // qemu's wording, quirk included
      continue;
    }
    owner[entry] = block;
    if (options.forWrite && entry >= blocksAllocated) {
      add({ kind: 'beyond-allocated', block, entry, message: `block ${block} points at image block ${entry}, beyond the ${blocksAllocated} blocks the header counts as allocated` });
    }
  }
  if (allocated !== blocksAllocated) {
    add({ kind: 'allocated-mismatch', counted: allocated, header: blocksAllocated, message: `allocated blocks mismatch, is ${allocated}, should be ${blocksAllocated}` });
  }
  return { allocated, findings };
}
