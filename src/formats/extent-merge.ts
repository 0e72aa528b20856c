/**
 * Building a mapping's extent list: a run that continues the previous one
 * (same kind, next guest byte, and for data the next host byte of the same
 * store) is merged into it, so that drivers walking their tables unit by
 * unit still return long extents.
 */
import type { Extent } from './driver.js';

/**
 * Appends `e` to `out`, merging it into the last extent when it continues
 * it. Zero runs merge only when neither reserves host space (reserved ones
 * carry their own host offsets); compressed units never merge.
 */
export function pushExtent(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  if (last && last.kind === e.kind && last.offset + last.length === e.offset) {
    const merges =
      e.kind === 'unallocated' ||
      (e.kind === 'zero' && last.kind === 'zero' && !e.allocated && !last.allocated) ||
      (e.kind === 'data' && last.kind === 'data' && last.store === e.store && last.hostOffset + last.length === e.hostOffset);
    if (merges) {
      out[out.length - 1] = { ...last, length: last.length + e.length };
      return;
    }
  }
  out.push(e);
}
