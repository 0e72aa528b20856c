/**
 * Persistent dirty bitmaps (qcow2's bitmap directory): what `info`,
 * `bitmap`, `measure` and `convert --bitmaps` use.
 */

/** One persistent dirty bitmap as its image records it. */
export interface PersistentBitmapInfo {
  /** Bitmap name (unique in the image). */
  readonly name: string;
  /** Bytes of guest data per bit. */
  readonly granularity: number;
  /** Recording new writes (qcow2's `auto` flag). */
  readonly enabled: boolean;
  /** Inconsistent: the image was not closed cleanly while it recorded (qcow2's `in_use`). */
  readonly inUse: boolean;
}

/**
 * Persistent dirty bitmaps of one open image. Bits are one per
 * `granularity` bytes of guest data, packed LSB first. Changes made
 * through the mutators are written back when the image is closed (or
 * flushed); enabled bitmaps of a writable image record every write.
 */
export interface ImageBitmaps {
  /** False when this image cannot store bitmaps (qcow2 v2): `add` then fails with qemu's message. */
  readonly supported: boolean;
  /** The bitmaps, in directory order. */
  list(): readonly PersistentBitmapInfo[];
  /** The dirty bits of `name` (length `ceil(ceil(virtualSize / granularity) / 8)`). */
  read(name: string): Promise<Uint8Array>;
  /** Present when the image is writable. Adds an empty bitmap. */
  add?(name: string, options: { granularity?: number | undefined; enabled?: boolean | undefined }): Promise<void>;
  /** Removes a bitmap. */
  remove?(name: string): Promise<void>;
  /** Clears every bit of a bitmap. */
  clear?(name: string): Promise<void>;
  /** Starts or stops recording writes. */
  setEnabled?(name: string, enabled: boolean): Promise<void>;
  /** Sets the bits covering every range `bits` (of `granularity`) marks dirty. */
  merge?(name: string, bits: Uint8Array, granularity: number): Promise<void>;
  /**
   * Adds a bitmap with given content and flags (convert --bitmaps). The
   * caller checked the name is free.
   */
  import?(info: PersistentBitmapInfo, bits: Uint8Array): Promise<void>;
}
