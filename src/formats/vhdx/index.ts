/**
 * vhdx: Microsoft's Hyper-V virtual hard disk v2, after the "VHDX Format
 * Specification v1.00" ([MS-VHDX]) and qemu's block/vhdx*.c for its
 * choices (layout on create, log written per BAT update, open-time BAT
 * checks). Beyond qemu-img, vdisk reads 4096-byte logical sectors,
 * differencing images (the parent is the backing file), and images with a
 * dirty log opened read-only (the log is replayed in memory).
 * This file wires the parts together and nothing else.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { createVhdx, VHDX_CREATE_OPTIONS } from './create.js';
import { hasFileSignature } from './header.js';
import { vhdxChecker } from './check.js';
import { VhdxImage } from './image.js';
import { openState } from './open.js';
import { vhdxStreamWriter } from './stream.js';
import { VhdxWriter } from './write.js';

async function open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
  const state = await openState(store, options);
  const image = new VhdxImage(state);
  if (!options.readOnly) image.writer = new VhdxWriter(state);
  image.checker = vhdxChecker(state);
  return image;
}

/** The vhdx format driver. */
export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  createOptions: VHDX_CREATE_OPTIONS,
  // qemu's vhdx_probe: the `vhdxfile` signature at offset 0.
  probe: (head) => (hasFileSignature(head) ? 100 : 0),
  open,
  create: createVhdx,
  streamWriter: vhdxStreamWriter,
};
