import type { BackingRef, ByteStore, FormatDescription, FormatImage } from '../formats/driver.js';
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
  /** The wrapper (gzip, zstd, bzip2, zip) the file was inflated from (the image is then a private temporary copy). */
  readonly wrapper?: WrapperInfo | undefined;
}

/** What `info` and `inspect` report of an open layer, read from its image here so that jobs need not reach into it. */
export interface LayerFacts {
  /** The format's own description. */
  readonly description: FormatDescription;
  /** Guest-visible size in bytes. */
  readonly virtualSize: number;
  /** Bytes the image occupies on disk (a wrapped upload's own, not its inflated copy's). */
  readonly actualSize: number | undefined;
}

/** The facts of `layer` (see {@link LayerFacts}). */
export async function layerFacts(layer: Layer): Promise<LayerFacts> {
  const image = layer.image;
  const description = await image.describe();
  const actualSize = layer.wrapper ? layer.wrapper.allocatedSize : image.allocatedSize ? await image.allocatedSize() : await image.store.allocatedSize?.();
  return { description, virtualSize: image.virtualSize, actualSize };
}

/** The guest-visible size of `layer`. */
export function layerSize(layer: Layer): number {
  return layer.image.virtualSize;
}

/** Closes the image of a layer opened on its own (not through a BlockDevice, which closes its layers). */
export function closeLayer(layer: Layer): Promise<void> {
  return layer.image.close();
}

/** The format's own description of `layer`. */
export function layerDescription(layer: Layer): Promise<FormatDescription> {
  return layer.image.describe();
}
