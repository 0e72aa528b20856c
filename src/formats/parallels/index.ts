/**
 * parallels: the Parallels expandable image (docs/interop/parallels.txt),
 * as QEMU's block/parallels.c and parallels-ext.c (qemu-img 7.2) handle
 * it: both signatures, read/write, create with `cluster_size`, the dirty
 * flag, check and repair, and the format extension's dirty bitmaps (read
 * only). This file wires the parts together.
 */
import type { FormatDriver } from '../driver.js';
import { createParallels, PRL_CREATE_OPTIONS } from './create.js';
import { openParallels } from './image.js';
import { probeParallels } from './probe.js';
import { PRL_RUNTIME_OPTIONS } from './runtime.js';

/** The parallels format driver. */
export const parallelsDriver: FormatDriver = {
  name: 'parallels',
  createOptions: PRL_CREATE_OPTIONS,
  runtimeOptions: PRL_RUNTIME_OPTIONS,
  probe: probeParallels,
  open: openParallels,
  create: createParallels,
};
