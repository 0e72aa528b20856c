/**
 * Streams, as a driver meets them: an image produced strictly in order
 * into a pipe or an upload, its layout planned first so its length is known
 * before the first byte (append-only), and an image read from a
 * forward-only source, each guest byte handed on as soon as the stream
 * shows where it belongs (forward-only). Drivers do not see Node streams:
 * the job layer plans the units, reads the source and wraps the bytes.
 */
import type { OptionValue } from '../../core/options.js';

/**
 * Which units of the guest hold data, found by the job before the image is
 * laid out (a unit is the writer's allocation unit: a qcow2 cluster, a VHD
 * block). A unit holds data when any of its bytes is not zero.
 */
export interface StreamPlan {
  /** Virtual size of the image. */
  readonly size: number;
  /** The writer's unit (bytes). */
  readonly unit: number;
  /** Indexes of the data units (unit `i` covers guest bytes `i * unit` …), strictly increasing. */
  readonly units: Float64Array;
  /**
   * Bytes each data unit takes once packed ({@link StreamWriter.pack}), in
   * the order of `units`; absent when the writer does not pack.
   */
  readonly packed?: Uint32Array | undefined;
}

/**
 * Writes one format strictly in order. The job asks for the unit, plans
 * the data units (packing each one when the writer packs), asks for the
 * length, and then hands `emit` the data units in plan order.
 */
export interface StreamWriter {
  /** The allocation unit the plan is made in (bytes; a power of two, at least 512). */
  readonly unit: number;
  /**
   * True when the image stores every unit whatever it holds (raw, fixed
   * VHD): the plan lists them all without reading the source.
   */
  readonly storesEveryUnit?: boolean | undefined;
  /**
   * Turns one data unit (`unit` bytes, zero-padded past the virtual size)
   * into the bytes the writer stores for it, for writers whose units vary
   * in length (compressed clusters, VMDK grains with their markers). It
   * must give the same bytes for the same input every time: the job may
   * pack a unit twice (once to plan, once to emit) instead of keeping it.
   */
  pack?(data: Uint8Array): Promise<Uint8Array>;
  /** The exact byte length of the image for this plan. */
  length(plan: StreamPlan): number;
  /**
   * The image's bytes, strictly in order, `length(plan)` of them in all.
   * `data` yields each data unit in plan order: `unit` bytes as read, or
   * what `pack` returned for it when the writer packs.
   */
  emit(plan: StreamPlan, data: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
}

/** What a driver's stream writer is made from. */
export interface StreamWriterRequest {
  /** Virtual size of the new image. */
  readonly size: number;
  /** The typed `-o` options (as `create` and `measure` get them). */
  readonly options: ReadonlyMap<string, OptionValue>;
  /** Compressed data units (`-c`). */
  readonly compress: boolean;
}

/**
 * A forward-only source of bytes (a pipe, an upload): every read continues
 * where the last one ended.
 */
export interface ForwardSource {
  /** Bytes consumed so far (the file offset of the next byte). */
  readonly position: number;
  /** Exactly `length` bytes; a typed error naming the offset when the stream ends first. */
  read(length: number): Promise<Uint8Array>;
  /** Up to `length` bytes: fewer only at the end of the stream, none after it. */
  readUpTo(length: number): Promise<Uint8Array>;
  /** Consumes `length` bytes without keeping them; a typed error when the stream ends first. */
  skip(length: number): Promise<void>;
}

/** One guest write a forward reader produces. Writes come in any order but never overlap. */
export type GuestWrite = GuestDataWrite | GuestZeroWrite;

/** Guest bytes to write. */
export interface GuestDataWrite {
  /** Guest offset of the first byte. */
  readonly offset: number;
  /** The bytes. */
  readonly data: Uint8Array;
}

/** A guest range that reads as zeros (written only where the target does not already read as zeros). */
export interface GuestZeroWrite {
  /** Guest offset of the range. */
  readonly offset: number;
  /** Its length in bytes. */
  readonly length: number;
  /** Always true. */
  readonly zero: true;
}

/** Where a forward reader may keep bytes it cannot place yet. */
export interface SpillSettings {
  /** Bytes kept in memory before spilling to a file (default 64 MiB). */
  readonly memory?: number | undefined;
  /** Most bytes kept in all, memory and file (default 4 GiB); past it the read fails naming the offset. */
  readonly limit?: number | undefined;
  /** Directory of the spill file (default the OS temporary directory); the file is unlinked at once. */
  readonly dir?: string | undefined;
}

/** An image being read from a forward-only source. */
export interface ForwardImage {
  /** Virtual size, when the header gives it (undefined for raw and fixed VHD until the end). */
  readonly size: number | undefined;
  /** Every guest byte that is not zero, placed; unwritten ranges read as zeros. */
  writes(): AsyncIterable<GuestWrite>;
  /** The virtual size, once `writes` is exhausted. */
  finalSize(): number;
}

/** What a driver's forward reader gets. */
export interface ForwardRequest {
  /** Where bytes that cannot be placed yet may be kept. */
  readonly spill?: SpillSettings | undefined;
  /** Aborts the read. */
  readonly signal?: AbortSignal | undefined;
  /** Name of the source for messages (`-` for stdin). */
  readonly name: string;
}
