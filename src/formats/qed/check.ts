/**
 * `qemu-img check` for QED (qed-check.c): every L1 and L2 entry must point
 * at whole clusters inside the file, past the header, and no cluster may
 * be used twice; clusters of the file nobody uses are leaks. A repair
 * (`-r leaks` and `-r all` alike, as qemu's `!!fix`) clears invalid
 * entries, which then read from the backing file; leaks are only counted.
 * A repair that leaves no corruption clears the need-check flag.
 * qemu logs no detail lines for QED, so neither does this.
 */
import { IoError } from '../../core/errors.js';
import type { CheckCounts, CheckRequest, ImageChecker } from '../driver.js';
import { isClusterOffsetValid, isTableOffsetValid, QED_UNALLOCATED, QED_ZERO_CLUSTER } from './header.js';
import { QED_CHECK_MAX_BITMAP_BYTES } from './limits.js';
import { clearNeedCheck, type QedState } from './open.js';

/** Counters of one pass (qemu's BdrvCheckResult fields QED sets). */
interface Tally {
  corruptions: number;
  corruptionsFixed: number;
  allocated: number;
  fragmented: number;
}

/** One bit per cluster of the file: referenced yet. */
class UsedClusters {
  readonly #bits: Uint8Array;
  readonly #clusterSize: number;

  constructor(nclusters: number, clusterSize: number) {
    const bytes = Math.ceil(nclusters / 8);
    if (bytes > QED_CHECK_MAX_BITMAP_BYTES) throw new IoError('Cannot allocate memory');
    this.#bits = new Uint8Array(bytes);
    this.#clusterSize = clusterSize;
  }

  /** Marks `n` clusters from byte `offset`; returns how many were already marked (each a corruption). */
  mark(offset: number, n: number): number {
    let twice = 0;
    for (let c = offset / this.#clusterSize, end = c + n; c < end; c++) {
      const bit = 1 << (c & 7);
      const i = Math.floor(c / 8);
      if ((this.#bits[i] as number) & bit) twice++;
      this.#bits[i] = (this.#bits[i] as number) | bit;
    }
    return twice;
  }

  /** Unmarked clusters in `[first, end)`. */
  countFree(first: number, end: number): number {
    let free = 0;
    let c = first;
    for (; c < end && c % 8 !== 0; c++) if (!(((this.#bits[Math.floor(c / 8)] as number) >> (c & 7)) & 1)) free++;
    // whole bytes at a time: a fully used byte (the common case) costs one comparison
    for (; c + 8 <= end; c += 8) {
      const b = this.#bits[c / 8] as number;
      if (b !== 0xff) for (let k = 0; k < 8; k++) if (!((b >> k) & 1)) free++;
    }
    for (; c < end; c++) if (!(((this.#bits[Math.floor(c / 8)] as number) >> (c & 7)) & 1)) free++;
    return free;
  }
}

/** Checks (and with `fix` repairs) one L2 table, a page at a time. */
async function checkL2(s: QedState, table: number, used: UsedClusters, t: Tally, fix: boolean): Promise<void> {
  let last = 0;
  for (let index = 0; index < s.g.entries; ) {
    const run = await s.tables.run(table, index);
    let fixed = false;
    for (let i = 0; i < run.entries.length; i++) {
      const off = run.entries[i] as number;
      if (off === QED_UNALLOCATED || off === QED_ZERO_CLUSTER) continue;
      t.allocated++;
      if (last && last + s.g.clusterSize !== off) t.fragmented++;
      last = off;
      if (!isClusterOffsetValid(s.g, s.fileSize, off)) {
        if (fix) {
          run.entries[i] = QED_UNALLOCATED;
          t.corruptionsFixed++;
          fixed = true;
        } else t.corruptions++;
        continue;
      }
      t.corruptions += used.mark(off, 1);
    }
    if (fixed) await s.tables.set(table, run.first, run.entries);
    index += run.entries.length;
  }
}

/** Walks the L1 table and every L2 table it names, then counts leaks. */
export async function checkQed(s: QedState, req: CheckRequest): Promise<CheckCounts> {
  const fix = req.repair !== 'none';
  const { g } = s;
  const nclusters = s.fileSize / g.clusterSize;
  const used = new UsedClusters(nclusters, g.clusterSize);
  const t: Tally = { corruptions: 0, corruptionsFixed: 0, allocated: 0, fragmented: 0 };
  t.corruptions += used.mark(s.l1Offset, g.tableSize);
  for (let index = 0; index < g.entries; ) {
    req.signal?.throwIfAborted();
    const run = await s.tables.run(s.l1Offset, index);
    let fixed = false;
    for (let i = 0; i < run.entries.length; i++) {
      const off = run.entries[i] as number;
      if (off === QED_UNALLOCATED) continue;
      if (!isTableOffsetValid(g, s.fileSize, off)) {
        if (fix) {
          run.entries[i] = QED_UNALLOCATED;
          t.corruptionsFixed++;
          fixed = true;
        } else t.corruptions++;
        continue;
      }
      const twice = used.mark(off, g.tableSize);
      t.corruptions += twice;
      if (twice) continue; // a table sharing clusters is not descended into
      await checkL2(s, off, used, t, fix);
    }
    if (fixed) await s.tables.set(s.l1Offset, run.first, run.entries);
    index += run.entries.length;
    req.onProgress?.(index, g.entries);
  }
  const leaks = used.countFree(g.headerBytes / g.clusterSize, nclusters);
  // the fixes reach the disk before the flag that vouches for them is cleared
  if (fix && t.corruptions === 0) await clearNeedCheck(s);
  return {
    checkErrors: 0,
    corruptions: t.corruptions,
    leaks,
    corruptionsFixed: t.corruptionsFixed,
    leaksFixed: 0,
    totalClusters: Math.ceil(s.imageSize / g.clusterSize),
    allocatedClusters: t.allocated,
    fragmentedClusters: t.fragmented,
    compressedClusters: 0,
  };
}

/** The checker of an open image; repairs need it writable (the check job opens it so). */
export function qedChecker(state: QedState): ImageChecker {
  return { canRepair: true, check: (req) => checkQed(state, req) };
}
