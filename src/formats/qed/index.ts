/**
 * qed: the QEMU Enhanced Disk format, after docs/interop/qed_spec.txt and
 * QEMU's block/qed*.c behaviour (qemu-img 7.2): two-level tables of byte
 * offsets (0 unallocated, 1 zero cluster), backing files with an optional
 * raw (no-probe) format, the need-check flag and its repair, grow-only
 * resize and rebase. QEMU has no amend or measure for qed, so neither
 * does this driver. This file wires the parts together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { createQed, QED_CREATE_OPTIONS } from './create.js';
import { QedImage } from './image.js';
import { openQedState } from './open.js';
import { probeQed } from './probe.js';

async function open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
  const state = await openQedState(store, options);
  return new QedImage(state, !options.readOnly);
}

/** The qed format driver. */
export const qedDriver: FormatDriver = {
  name: 'qed',
  createOptions: QED_CREATE_OPTIONS,
  probe: probeQed,
  open,
  create: createQed,
};
