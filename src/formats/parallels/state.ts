/**
 * The state of an open Parallels image that the image and its checker
 * share, and the BAT arithmetic both use.
 */
import type { ByteStore } from '../driver.js';
import type { VdiBlockMap } from '../vdi/paged-map.js';
import type { PrlHeader } from './header.js';

const SECTOR = 512;

/** Mutable state of an open image, shared with the checker. */
export interface PrlState {
  readonly store: ByteStore;
  readonly header: PrlHeader;
  readonly clusterSize: number;
  readonly bat: VdiBlockMap;
  /** BAT entries inside the file: those after it read as 0 (unallocated), so scans stop there. */
  readonly batInFile: number;
  /** End of the data area in sectors: where the next cluster goes (QEMU's data_end). */
  dataEnd: number;
  /** `inuse` was set when the image was opened: it was not closed cleanly. */
  unclean: boolean;
}

/** Byte offset of BAT entry `entry`'s cluster (0 for an unallocated entry). */
export function clusterOffset(h: PrlHeader, entry: number): number {
  return entry * h.offMultiplier * SECTOR;
}


/** A little-endian u32 (a BAT entry, the `inuse` field). */
export function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
