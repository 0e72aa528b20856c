/**
 * vmdk: VMware's virtual disk format, after the VMware Virtual Disk Format
 * 1.1 specification (hosted sparse `KDMV` extents, text descriptors,
 * streamOptimized markers) and QEMU's block/vmdk.c (which qemu-img 7.2
 * reads and writes; its limits are vdisk's floor). This file wires the
 * parts together and nothing else.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { createSettings, createVmdk, VMDK_CREATE_OPTIONS, vmdkCreatesExtraFiles } from './create.js';
import { vmdkChecker } from './check.js';
import { VmdkImage } from './image.js';
import { openVmdk } from './open.js';
import { readVmdkForward } from './forward.js';
import { probeVmdk } from './probe.js';
import { vmdkStreamWriter } from './stream-out.js';
import { enableWrites } from './writer.js';

async function open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
  const state = await openVmdk(store, options);
  const image = new VmdkImage(store, state, options.external, options.filename);
  image.checker = vmdkChecker(image);
  if (!options.readOnly) {
    try {
      await enableWrites(image);
    } catch (err) {
      await Promise.allSettled(state.stores.map((s) => s.close()));
      throw err;
    }
  }
  return image;
}

/** The vmdk format driver. */
export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  createOptions: VMDK_CREATE_OPTIONS,
  probe: probeVmdk,
  open,
  validateCreate: (size, options) => void createSettings(size, options),
  create: createVmdk,
  createsExtraFiles: vmdkCreatesExtraFiles,
  streamWriter: vmdkStreamWriter,
  readForward: readVmdkForward,
};
