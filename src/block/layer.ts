import type { BackingRef, ByteStore, FormatImage } from '../formats/driver.js';
import type { WrapperInfo } from './unwrap.js';

/** One open image of a chain, with what the block layer learned opening it. */
export interface Layer {
  /** The open image. */
  readonly image: FormatImage;
  /** Every file the image consists of: its own store, then the data files and extents it names. */
  readonly files: readonly ByteStore[];
  /** The name it was opened under (qemu's `filename`; `json:{...}` for some images named by options). */
  readonly filename: string;
  /** Its file's path: names inside the image (backing file, extents) are relative to it. */
  readonly path: string;
  /** Its format. */
  readonly format: string;
  /** True when the format was probed (not given) and came out raw. */
  readonly probedRaw: boolean;
  /** The backing file the image records, if any. */
  readonly backing: BackingRef | undefined;
  /** The backing name combined with this image's directory (qemu's `full-backing-filename`). */
  readonly backingPath: string | undefined;
  /** The gzip or zip wrapper the file was inflated from (the image is then a private temporary copy). */
  readonly wrapper?: WrapperInfo | undefined;
}
