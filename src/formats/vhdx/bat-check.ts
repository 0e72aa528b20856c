/**
 * qemu's vhdx_check_bat_entries, extended to differencing images: every
 * allocated block must lie inside the file (whose length QEMU counts in
 * whole sectors) and outside the metadata structures. An open fails on the
 * first finding; `check` (which opens without this validation, as QEMU's
 * BDRV_O_CHECK does) reports every one and counts it as a corruption.
 */
import { alignUp } from '../../core/bytes.js';
import type { Bat, BatGeometry } from './bat.js';
import { HEADER_SECTION_END, MiB, PayloadState, SB_PRESENT } from './constants.js';
import type { FileRange } from './region.js';

/** One BAT entry that points where no block may be. */
export interface BatFinding {
  /** qemu's error_report text. */
  readonly message: string;
  /** File offset of the BAT entry. */
  readonly offset: number;
}

/** What the BAT walk needs of an open image. */
export interface BatScope {
  readonly bat: Bat;
  readonly geometry: BatGeometry;
  readonly virtualSize: number;
  /** The image file's length in bytes. */
  readonly fileSize: number;
  /**
   * qemu's list of registered regions, newest first: the region table's
   * entries in reverse table order, then the log. A payload block overlapping
   * one is reported against the first it overlaps, in qemu's words.
   */
  readonly regions: readonly FileRange[];
  /** Sector bitmap blocks (differencing images) are 1 MiB. */
  readonly hasParent: boolean;
}

const INT64_MAX = 2n ** 63n - 1n;

/** Yields the findings in BAT order, as qemu reports them. */
export function* batFindings(s: BatScope): Generator<BatFinding> {
  const { bat, geometry: g } = s;
  const fileSize = alignUp(s.fileSize, 512);
  for (let i = 0; i < bat.length; i++) {
    const bitmap = i % (g.chunkRatio + 1) === g.chunkRatio;
    const state = bat.state(i);
    if (bitmap ? state !== SB_PRESENT : state !== PayloadState.FullyPresent && state !== PayloadState.PartiallyPresent) continue;
    const where = bat.fileOffset + i * 8;
    const length = bitmap && s.hasParent ? MiB : blockLength(s, i);
    const off = bat.rawOffset(i);
    if (off > INT64_MAX - BigInt(g.blockSize)) {
      yield { message: `VHDX BAT entry ${i} offset points after end of file. Image has probably been truncated.`, offset: where };
    }
    if (off >= BigInt(fileSize)) {
      yield { message: `VHDX BAT entry ${i} start offset ${off} points after end of file (${fileSize}). Image has probably been truncated.`, offset: where };
    } else if (Number(off) + length > fileSize) {
      yield { message: `VHDX BAT entry ${i} end offset ${Number(off) + length - 1} points after end of file (${fileSize}). Image has probably been truncated.`, offset: where };
    }
    if (off >= INT64_MAX) continue;
    const start = Number(off);
    // vhdx_region_check spans a whole block from a payload entry's offset.
    const span = bitmap ? length : g.blockSize;
    const hit = s.regions.find((r) => r.length > 0 && start < r.offset + r.length && r.offset < start + span);
    if (hit) {
      yield { message: `VHDX region ${start}-${start + span} overlaps with region ${hit.offset}-${hit.offset + hit.length}`, offset: where };
    } else if (start < HEADER_SECTION_END) {
      // The header section, which qemu does not register: a block there is vdisk's finding alone.
      yield { message: `VHDX BAT entry ${i} at offset ${start} overlaps the header section`, offset: where };
    }
  }
}

/**
 * qemu sizes the block of entry `i` as MIN(block size, disk size - i × block
 * size) in unsigned arithmetic: counted by entry, not by block, and a
 * negative rest wraps to a full block.
 */
function blockLength(s: BatScope, i: number): number {
  const rest = s.virtualSize - i * s.geometry.blockSize;
  return rest < 0 ? s.geometry.blockSize : Math.min(s.geometry.blockSize, rest);
}
