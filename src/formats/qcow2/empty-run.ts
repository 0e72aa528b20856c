/**
 * Runs of empty (all-zero) entries in a metadata table. Big sparse images
 * have tables with a handful of used entries among thousands: comparing
 * whole slices against zeros natively (memcmp) walks them several times
 * faster than reading entry by entry.
 */

/** Slice sizes tried in turn, coarse then fine (bytes; multiples of every entry size). */
const LEVELS = [4096, 256] as const;
const ZEROS = Buffer.alloc(LEVELS[0]);
/** Entries read one by one before slices are compared. */
const FIRST_ENTRIES = 4;

/** Most bytes {@link zeroSpan} tests at once (a multiple of every entry size). */
export const SPAN_BYTES = LEVELS[0];

/** True when `bytes[start, end)` (at most {@link SPAN_BYTES}) is all zero: one native memcmp. */
export function zeroSpan(bytes: Uint8Array, start: number, end: number): boolean {
  return ZEROS.compare(bytes, start, end, 0, end - start) === 0;
}

function emptyEntry(table: Uint8Array, start: number, entryBytes: number): boolean {
  for (let k = start; k < start + entryBytes; k++) if (table[k] !== 0) return false;
  return true;
}

/**
 * Index of the first entry in `[from, to)` with a non-zero byte (`to` when
 * there is none); entries are `entryBytes` long.
 */
export function emptyRunEnd(table: Uint8Array, from: number, to: number, entryBytes: number): number {
  // Entry by entry first: in a dense table the run ends within a few entries, and a slice
  // compare costs more than reading those entries (the native call, a slice that fails).
  let i = from;
  for (const stop = Math.min(to, from + FIRST_ENTRIES); i < stop; i++) if (!emptyEntry(table, i * entryBytes, entryBytes)) return i;
  while (i < to) {
    for (const bytes of LEVELS) {
      const per = bytes / entryBytes;
      while (to - i >= per && zeroSpan(table, i * entryBytes, (i + per) * entryBytes)) i += per;
    }
    // The next finest slice holds a used entry, or the range ends within it.
    const stop = Math.min(to, i + LEVELS[1] / entryBytes);
    while (i < stop && emptyEntry(table, i * entryBytes, entryBytes)) i++;
    if (i < stop) return i;
  }
  return to;
}
