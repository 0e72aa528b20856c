/**
 * Opening a layer at an internal snapshot (qemu's bdrv_snapshot_load_tmp,
 * used by `convert -l` and `measure -l`): the layer reads the snapshot's
 * content, read-only, and closing it closes the image too.
 */
import { NotFoundError, UnsupportedError } from '../core/errors.js';
import type { Layer } from './layer.js';
import type { BackingReader, CompressedExtent, Extent, FormatDescription, FormatImage, SnapshotRef } from '../formats/driver.js';

/** A snapshot to open: `{id}`, `{name}`, both, or one string tried as ID, then as name. */
export type SnapshotSelector = SnapshotRef | string;

/** Delegates to the snapshot view; close() closes the view, then the image it came from. */
class SnapshotLayer implements FormatImage {
  readonly #view: FormatImage;
  readonly #image: FormatImage;

  constructor(view: FormatImage, image: FormatImage) {
    this.#view = view;
    this.#image = image;
  }

  get format(): string {
    return this.#view.format;
  }
  get store() {
    return this.#view.store;
  }
  get virtualSize(): number {
    return this.#view.virtualSize;
  }
  get granularity(): number {
    return this.#view.granularity;
  }
  get backing() {
    return this.#view.backing;
  }
  /** Persistent bitmaps belong to the image, not to a snapshot: qemu keeps them while a snapshot is loaded. */
  get bitmaps() {
    return this.#image.bitmaps;
  }
  mapping(offset: number, length: number, maxExtents?: number): Promise<readonly Extent[]> {
    return this.#view.mapping(offset, length, maxExtents);
  }
  readCompressed(extent: CompressedExtent, unit: Uint8Array): Promise<void> {
    if (!this.#view.readCompressed) throw new UnsupportedError(`Format '${this.format}' cannot read compressed extents`);
    return this.#view.readCompressed(extent, unit);
  }
  recurseHostStatus(): Promise<boolean> {
    return this.#view.recurseHostStatus?.() ?? Promise.resolve(false);
  }
  attachBacking(reader: BackingReader | undefined, size?: number): void {
    this.#view.attachBacking?.(reader, size);
  }
  describe(): Promise<FormatDescription> {
    return this.#view.describe();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  async close(): Promise<void> {
    try {
      await this.#view.close();
    } finally {
      await this.#image.close();
    }
  }
}

/**
 * Opens `image` at snapshot `which`. On success the returned layer owns
 * `image`; on failure `image` is left open (the caller closes it).
 *
 * @throws {UnsupportedError} for formats without internal snapshots, {@link NotFoundError} when none matches
 */
async function openAtSnapshot(image: FormatImage, which: SnapshotSelector): Promise<FormatImage> {
  const ops = image.snapshots;
  if (!ops) {
    throw new UnsupportedError(`Failed to load snapshot: Block format '${image.format}' used by device '' does not support temporarily loading internal snapshots`);
  }
  let view: FormatImage;
  if (typeof which === 'string') {
    try {
      view = await ops.open({ id: which });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      view = await ops.open({ name: which });
    }
  } else {
    view = await ops.open(which);
  }
  return new SnapshotLayer(view, image);
}

/** The chain's top layer, re-pointed at snapshot `which` (see {@link openAtSnapshot}). */
export async function layerAtSnapshot(layer: Layer, which: SnapshotSelector): Promise<Layer> {
  if (layer.image.writer) throw new UnsupportedError('Internal snapshots can only be opened read-only');
  return { ...layer, image: await openAtSnapshot(layer.image, which) };
}
