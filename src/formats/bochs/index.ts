/**
 * bochs: Bochs growing redolog images (versions 1 and 2), read-only, after
 * QEMU's block/bochs.c (qemu-img 7.2). This file wires the parts together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { READ_ONLY_CAPABILITIES } from '../read-only/common.js';
import { openBochs } from './image.js';
import { probeBochs } from './probe.js';

/** The bochs format driver. */
export const bochsDriver: FormatDriver = {
  name: 'bochs',
  capabilities: READ_ONLY_CAPABILITIES,
  createOptions: [],
  probe: probeBochs,
  open: (store: ByteStore, options: OpenOptions): Promise<FormatImage> => openBochs(store, options),
};
