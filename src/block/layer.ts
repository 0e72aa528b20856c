import type { BackingRef, FormatImage } from '../formats/driver.js';

/** One open image of a chain, with what the block layer learned opening it. */
export interface Layer {
  /** The open image. */
  readonly image: FormatImage;
  /** The name it was opened under (qemu's `filename`). */
  readonly filename: string;
  /** Its format. */
  readonly format: string;
  /** True when the format was probed (not given) and came out raw. */
  readonly probedRaw: boolean;
  /** The backing file the image records, if any. */
  readonly backing: BackingRef | undefined;
  /** The backing name combined with this image's directory (qemu's `full-backing-filename`). */
  readonly backingPath: string | undefined;
}
