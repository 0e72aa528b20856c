/**
 * vpc: Microsoft's Virtual Hard Disk (VHD), after the "Virtual Hard Disk
 * Image Format Specification" (Microsoft, version 1.0, 2006) and QEMU's
 * block/vpc.c behaviour (qemu-img 7.2): fixed, dynamic and — beyond QEMU,
 * which ignores the parent — differencing disks, opened with their parent
 * as the backing file (format vpc); a parent whose footer unique ID is not
 * the one the child records is refused as corrupt when first read through
 * (./parent-id.ts, like vmdk's parentCID check). This file wires the parts
 * together.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { typeQemuOpts } from '../../core/options.js';
import type { ByteStore, FormatDriver, FormatImage, OpenOptions, OptionSpec } from '../driver.js';
import { createVpc, VPC_CREATE_OPTIONS } from './create.js';
import { hasFooterCookie } from './footer.js';
import { VpcImage } from './image.js';
import { openVpc } from './open.js';
import { vpcStreamWriter } from './stream.js';
import { readVpcForward } from './forward.js';

/** Open options: `force_size_calc` overrides how the virtual size is read from the footer. */
const RUNTIME_OPTIONS: readonly OptionSpec[] = [{ name: 'force_size_calc', type: 'string', help: 'Force disk size calculation to use either CHS geometry, or use the disk current_size specified in the VHD footer. {chs, current_size}' }];

function sizeCalc(options: OpenOptions): 'chs' | 'current_size' | undefined {
  const mode = typeQemuOpts(RUNTIME_OPTIONS, options.runtime ?? []).get('force_size_calc');
  if (mode === undefined || mode === 'chs' || mode === 'current_size') return mode;
  throw new InvalidArgumentError(`Invalid size calculation mode: '${String(mode)}'`);
}

async function open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
  const writable = !options.readOnly;
  const state = await openVpc(store, writable, sizeCalc(options));
  return new VpcImage(state, writable, options.external, options.filename);
}

/** The vpc (VHD) format driver. */
export const vpcDriver: FormatDriver = {
  name: 'vpc',
  createOptions: VPC_CREATE_OPTIONS,
  runtimeOptions: RUNTIME_OPTIONS,
  // Only the footer copy at offset 0 is probed, as QEMU does: fixed disks
  // (footer at the end only) are read as raw unless the format is given.
  probe: (head) => (hasFooterCookie(head) ? 100 : 0),
  open,
  create: createVpc,
  streamWriter: vpcStreamWriter,
  readForward: readVpcForward,
};
