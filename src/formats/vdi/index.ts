/**
 * vdi: VirtualBox's Virtual Disk Image, version 1.1, after the VirtualBox
 * source's VDICore.h layout (header, block map, 1 MiB blocks) and QEMU's
 * block/vdi.c behaviour (qemu-img 7.2): dynamic and static images, no
 * differencing (link or parent UUID set → refused, as QEMU does). This
 * file wires the parts together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { createVdi, VDI_CREATE_OPTIONS } from './create.js';
import { VDI_FIELD, VDI_HEADER_SIZE, VDI_SIGNATURE } from './header.js';
import { openVdi } from './image.js';

/** QEMU's probe: a whole header whose signature matches. */
function probe(head: Uint8Array): number {
  if (head.length < VDI_HEADER_SIZE) return 0;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return v.getUint32(VDI_FIELD.signature, true) === VDI_SIGNATURE ? 100 : 0;
}

/** The vdi format driver. */
export const vdiDriver: FormatDriver = {
  name: 'vdi',
  createOptions: VDI_CREATE_OPTIONS,
  probe,
  open: (store: ByteStore, options: OpenOptions): Promise<FormatImage> => openVdi(store, !options.readOnly, options.check === true),
  create: createVdi,
};
