/**
 * The read path of a chain: from each layer's mapping to guest bytes, with
 * the backing fall-through and zero-filling drivers leave to the block
 * layer.
 */
import { CorruptImageError } from '../core/errors.js';
import type { CompressedExtent, Extent, FormatImage } from '../formats/driver.js';
import { checkExtent, compressedRun } from './extent-status.js';
import type { Layer } from './layer.js';

/**
 * Reads `into.length` guest bytes at `offset` of the chain from `depth`
 * down: each layer's mapping says where the bytes are, unallocated runs
 * fall through to the layer below, and past a layer's end reads zeros.
 */
export async function readLayers(layers: readonly Layer[], depth: number, offset: number, into: Uint8Array): Promise<void> {
  const image = layers[depth]?.image;
  if (!image || offset >= image.virtualSize) {
    into.fill(0);
    return;
  }
  const end = Math.min(into.length, image.virtualSize - offset);
  if (end < into.length) into.fill(0, end);
  let pos = 0;
  while (pos < end) {
    const extents = await image.mapping(offset + pos, end - pos);
    if (extents.length === 0) throw new CorruptImageError(`Driver returned no mapping at offset ${offset + pos}`);
    for (let i = 0; i < extents.length; i++) {
      const e = extents[i] as Extent;
      checkExtent(e, offset + pos, end - pos);
      if (e.kind === 'compressed' && image.readCompressedRun) {
        // Consecutive compressed units are decoded together (in parallel) rather than one by one.
        const run = compressedRun(extents, i, offset + pos, end - pos);
        await image.readCompressedRun(run.extents, into.subarray(pos, pos + run.length));
        pos += run.length;
        i += run.extents.length - 1;
        continue;
      }
      const sub = into.subarray(pos, pos + e.length);
      switch (e.kind) {
        case 'data':
          await e.store.read(e.hostOffset, sub);
          break;
        case 'zero':
          sub.fill(0);
          break;
        case 'unallocated':
          await readLayers(layers, depth + 1, e.offset, sub);
          break;
        case 'compressed':
          await readCompressed(image, e, sub);
          break;
      }
      pos += e.length;
    }
  }
}

/** One compressed extent's bytes, through the image's part decoder or a whole-unit buffer. */
async function readCompressed(image: FormatImage, e: CompressedExtent, into: Uint8Array): Promise<void> {
  if (image.readCompressedPart) return image.readCompressedPart(e, into);
  if (!image.readCompressed) throw new CorruptImageError(`Format '${image.format}' reported a compressed extent it cannot read`);
  const unit = new Uint8Array(image.granularity);
  await image.readCompressed(e, unit);
  const start = e.offset - e.unitOffset;
  into.set(unit.subarray(start, start + into.length));
}
