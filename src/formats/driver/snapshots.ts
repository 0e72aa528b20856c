/**
 * Internal snapshots (`qemu-img snapshot`, `convert -l`).
 */
import type { FormatImage } from './image.js';

/** One internal snapshot as `info` reports it. */
export interface SnapshotInfo {
  /** Snapshot ID. */
  readonly id: string;
  /** Snapshot name. */
  readonly name: string;
  /** Saved VM state size in bytes. */
  readonly vmStateSize: number;
  /** Creation time, seconds since the epoch. */
  readonly dateSec: number;
  /** Nanoseconds part of the creation time. */
  readonly dateNsec: number;
  /** Guest clock at creation, in nanoseconds. */
  readonly vmClockNsec: number;
  /** Instruction count, when recorded. */
  readonly icount?: number | undefined;
}

/** Names an internal snapshot: by `id`, by `name`, or both (then both must match). */
export interface SnapshotRef {
  /** The snapshot ID ("1", "2", …). */
  readonly id?: string | undefined;
  /** The snapshot name (tag). */
  readonly name?: string | undefined;
}

/** What a new internal snapshot records. */
export interface NewSnapshotRequest {
  /** Its name (tag); names need not be unique, as in qemu. */
  readonly name: string;
  /** Creation time, seconds since the epoch (default: now). */
  readonly dateSec?: number | undefined;
  /** Nanoseconds part of the creation time (default: now, microsecond precision as qemu). */
  readonly dateNsec?: number | undefined;
}

/**
 * Internal snapshots of one open image. The mutators are present only when
 * the image is open for writing; each leaves the image consistent on disk
 * (crash-safe order: at worst leaked clusters) and flushed.
 */
export interface SnapshotOps {
  /** The snapshots, in table order. */
  list(): readonly SnapshotInfo[];
  /** Takes a snapshot of the current content; resolves to the new entry (its ID assigned as qemu does). */
  create?(request: NewSnapshotRequest): Promise<SnapshotInfo>;
  /** Makes the current content (and virtual size) that of snapshot `idOrName` (ID first, then name). */
  apply?(idOrName: string): Promise<void>;
  /** Deletes the first snapshot matching `ref`; freed clusters become reusable. Resolves to what was deleted. */
  delete?(ref: SnapshotRef): Promise<SnapshotInfo>;
  /**
   * A read-only image of a snapshot's content (`convert -l`), at the
   * image's current virtual size as qemu's load_tmp gives it. It shares
   * this image's file: close it before closing this image.
   */
  open(ref: SnapshotRef): Promise<FormatImage>;
}
