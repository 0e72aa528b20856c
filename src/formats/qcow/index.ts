/**
 * qcow: QEMU's original copy-on-write format (version 1), after QEMU's
 * block/qcow.c (qemu-img 7.2): two-level cluster tables, backing files,
 * zlib-compressed clusters and the legacy AES encryption. No refcounts,
 * so no check, resize, amend, measure or snapshots, as in QEMU. This file
 * wires the parts together.
 */
import type { FormatDriver } from '../driver.js';
import { createQcow, QCOW_CREATE_OPTIONS } from './create.js';
import { openQcow } from './open.js';
import { probeQcow } from './probe.js';

/** The qcow format driver. */
export const qcowDriver: FormatDriver = {
  name: 'qcow',
  createOptions: QCOW_CREATE_OPTIONS,
  probe: probeQcow,
  // qcow_open takes the `encrypt.` options (format, key-secret) off the open options
  runtimeOptions: [{ name: 'encrypt.', type: 'string', help: 'Encryption options' }],
  open: openQcow,
  create: createQcow,
};
