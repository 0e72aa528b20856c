/**
 * bochs: Bochs growing redolog images (versions 1 and 2), read-only, after
 * QEMU's block/bochs.c (qemu-img 7.2). This file wires the parts together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { openBochs } from './image.js';
import { probeBochs } from './probe.js';

/** The bochs format driver. */
export const bochsDriver: FormatDriver = {
  name: 'bochs',
  readOnly: true,
  createOptions: [],
  probe: probeBochs,
  open: (store: ByteStore, options: OpenOptions): Promise<FormatImage> => openBochs(store, options),
};
