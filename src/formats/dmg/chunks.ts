/**
 * The chunk table of a dmg: every readable chunk of every mish block,
 * sorted by first guest sector, in typed arrays (QEMU keeps the same five
 * arrays and binary-searches them).
 */
import { UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** DMG chunk (block) types. */
export const CHUNK = {
  zero: 0x00000000,
  raw: 0x00000001,
  ignore: 0x00000002,
  zlib: 0x80000005,
  bzip2: 0x80000006,
  lzfse: 0x80000007,
  comment: 0x7ffffffe,
  end: 0xffffffff,
} as const;

/** One chunk as a mish block describes it, absolute. */
export interface ChunkEntry {
  readonly type: number;
  /** First guest sector (may exceed what a number holds exactly: then never reached). */
  readonly sector: number;
  readonly sectors: number;
  /** Byte offset of the stored data in the file (past the exact range: reads as zeros). */
  readonly offset: number;
  /** Stored bytes (≤ 64 MiB, checked). */
  readonly length: number;
}

/** Collects chunks, bounded by {@link LIMITS.dmgMaxChunks}. */
export class ChunkTableBuilder {
  readonly #entries: ChunkEntry[] = [];

  /** Chunks added so far. */
  get size(): number {
    return this.#entries.length;
  }

  add(entry: ChunkEntry): void {
    if (this.#entries.length >= LIMITS.dmgMaxChunks) {
      throw new UnsupportedError(`dmg image has more than ${LIMITS.dmgMaxChunks} chunks, the most vdisk reads`);
    }
    this.#entries.push(entry);
  }

  build(): ChunkTable {
    // stable: chunks with the same first sector keep the order of the image
    const sorted = this.#entries.map((e, i) => [e, i] as const).sort((a, b) => a[0].sector - b[0].sector || a[1] - b[1]);
    return new ChunkTable(sorted.map(([e]) => e));
  }
}

/** The sorted chunks; lookups by guest sector. */
export class ChunkTable {
  readonly count: number;
  readonly types: Uint32Array;
  readonly sectors: Float64Array;
  readonly counts: Float64Array;
  readonly offsets: Float64Array;
  readonly lengths: Float64Array;

  constructor(entries: readonly ChunkEntry[]) {
    const n = entries.length;
    this.count = n;
    this.types = new Uint32Array(n);
    this.sectors = new Float64Array(n);
    this.counts = new Float64Array(n);
    this.offsets = new Float64Array(n);
    this.lengths = new Float64Array(n);
    entries.forEach((e, i) => {
      this.types[i] = e.type;
      this.sectors[i] = e.sector;
      this.counts[i] = e.sectors;
      this.offsets[i] = e.offset;
      this.lengths[i] = e.length;
    });
  }

  /** The last chunk starting at or before `sector`, when it holds `sector`; -1 otherwise (a read there fails). */
  find(sector: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.sectors[mid] as number) <= sector) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0) return -1;
    return sector < (this.sectors[best] as number) + (this.counts[best] as number) ? best : -1;
  }
}
