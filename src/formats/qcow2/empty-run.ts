/**
 * Runs of empty (all-zero) entries in a metadata table. Big sparse images
 * have tables with a handful of used entries among thousands: comparing
 * whole slices against zeros natively (memcmp) walks them several times
 * faster than reading entry by entry.
 */

/** Slice sizes tried in turn, coarse then fine (bytes; multiples of every entry size). */
const LEVELS = [4096, 256] as const;
const ZEROS = new Uint8Array(LEVELS[0]);

/** The table as a Buffer (for its native compare), without copying. */
export function asBuffer(table: Uint8Array): Buffer {
  return Buffer.isBuffer(table) ? table : Buffer.from(table.buffer, table.byteOffset, table.byteLength);
}

function zeroSlice(table: Buffer, start: number, bytes: number): boolean {
  return table.compare(ZEROS, 0, bytes, start, start + bytes) === 0;
}

function emptyEntry(table: Buffer, start: number, entryBytes: number): boolean {
  for (let k = start; k < start + entryBytes; k++) if (table[k] !== 0) return false;
  return true;
}

/**
 * Index of the first entry in `[from, to)` with a non-zero byte (`to` when
 * there is none); entries are `entryBytes` long.
 */
export function emptyRunEnd(table: Buffer, from: number, to: number, entryBytes: number): number {
  let i = from;
  while (i < to) {
    for (const bytes of LEVELS) {
      const per = bytes / entryBytes;
      while (to - i >= per && zeroSlice(table, i * entryBytes, bytes)) i += per;
    }
    // The next finest slice holds a used entry, or the range ends within it.
    const stop = Math.min(to, i + LEVELS[1] / entryBytes);
    while (i < stop && emptyEntry(table, i * entryBytes, entryBytes)) i++;
    if (i < stop) return i;
  }
  return to;
}
