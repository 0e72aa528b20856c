/**
 * One extent of an open VMDK image, whatever its kind, and the per-kind
 * mapping of guest ranges.
 */
import type { ByteStore, Extent } from '../driver.js';
import type { CompressedWriter } from './compressed-writer.js';
import type { SparseExtent } from './sparse.js';

/** An extent in guest order. */
export interface ExtentHandle {
  /** `format` in info: the descriptor's type word, '' for a monolithic sparse file. */
  readonly type: string;
  /** First guest byte. */
  readonly start: number;
  /** Guest bytes covered. */
  readonly length: number;
  /** Name shown by info (the descriptor's name combined with its directory). */
  readonly filename: string;
  /** The extent's file (undefined for ZERO extents). */
  readonly store: ByteStore | undefined;
  /** FLAT/VMFS: byte offset of the data in the file. */
  readonly flatOffset: number;
  /** Sparse extents: tables and grains. */
  readonly sparse: SparseExtent | undefined;
  /** RDONLY lines and COWD extents are never written. */
  readonly readOnly: boolean;
  /** Compressed extents opened for writing. */
  compressedWriter?: CompressedWriter | undefined;
}

/** True for extents whose data sits verbatim in a file (FLAT, VMFS). */
export function isFlat(e: ExtentHandle): boolean {
  return e.sparse === undefined && e.store !== undefined;
}

/** The extent holding guest byte `offset` (extents sorted by start, none empty). */
export function findExtent(extents: readonly ExtentHandle[], offset: number): ExtentHandle | undefined {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const e = extents[mid] as ExtentHandle;
    if (offset < e.start) hi = mid - 1;
    else if (offset >= e.start + e.length) lo = mid + 1;
    else return e;
  }
  return undefined;
}

/** Mapping of `[offset, offset+length)` within one extent (a non-empty prefix). */
export async function mapExtent(e: ExtentHandle, offset: number, length: number, maxExtents = Infinity): Promise<Extent[]> {
  const rel = offset - e.start;
  const n = Math.min(length, e.length - rel);
  if (e.sparse) {
    const out: Extent[] = [];
    await e.sparse.mapping(rel, n, e.start, out, maxExtents);
    return out;
  }
  if (!e.store) return [{ kind: 'zero', offset, length: n, allocated: false }];
  // qemu's vmdk block status recurses into flat extents' files (their holes read as zeros).
  return [{ kind: 'data', offset, length: n, store: e.store, hostOffset: e.flatOffset + rel, recurse: true }];
}
