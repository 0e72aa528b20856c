/**
 * cloop: compressed loopback images (V2.0), read-only, after QEMU's
 * block/cloop.c (qemu-img 7.2). This file wires the parts together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { openCloop } from './image.js';
import { probeCloop } from './probe.js';

/** The cloop format driver. */
export const cloopDriver: FormatDriver = {
  name: 'cloop',
  readOnly: true,
  createOptions: [],
  probe: probeCloop,
  open: (store: ByteStore, options: OpenOptions): Promise<FormatImage> => openCloop(store, options),
};
