/**
 * luks: LUKS1 volumes as QEMU reads and writes them (block/crypto.c,
 * crypto/block-luks.c), cryptography through node:crypto. This file
 * wires the parts together; the LUKS machinery shared with qcow2 lives
 * in ../crypto.
 */
import type { FormatDriver } from '../driver.js';
import { LUKS_AMEND_OPTIONS } from './amend.js';
import { createLuks, LUKS_CREATE_OPTIONS } from './create.js';
import { LUKS_RUNTIME_OPTIONS, openLuks } from './image.js';
import { probeLuks } from './probe.js';

/** The luks format driver. */
export const luksDriver: FormatDriver = {
  name: 'luks',
  capabilities: {
    create: true,
    write: true,
    backing: false,
    snapshots: false,
    compress: false,
    check: false,
    resize: true,
    amend: true,
    bitmaps: false,
  },
  createOptions: LUKS_CREATE_OPTIONS,
  runtimeOptions: LUKS_RUNTIME_OPTIONS,
  amendOptions: LUKS_AMEND_OPTIONS,
  probe: probeLuks,
  open: openLuks,
  create: createLuks,
};
