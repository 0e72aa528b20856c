/**
 * Azure: a fixed VHD whose virtual size is a whole number of MiB (the
 * footer's current size is what Azure reads, so qemu's CHS rounding is
 * turned off with force_size), at most 4 TiB for an OS disk.
 */
import { formatIn, isArchive, MiB, noReferences, opensCleanly, sizeAtMost, sizeMultiple, subformatIs, TiB, wrappedIn } from './rules.js';
import type { Preset } from './types.js';

const GENERIC = 'https://learn.microsoft.com/azure/virtual-machines/linux/create-upload-generic#general-linux-installation-notes';
const LIMITS = 'https://learn.microsoft.com/azure/virtual-machines/managed-disks-overview#disk-size';

export const azure: Preset = {
  name: 'azure',
  title: 'Azure',
  format: 'vpc',
  options: ['subformat=fixed', 'force_size=on'],
  sizeUnit: MiB,
  maxSize: 4 * TiB,
  maxSizeSource: LIMITS,
  rules: [
    formatIn('azure.format', GENERIC, ['vpc'], 'Azure takes VHD images (not VHDX, VMDK or qcow2)'),
    subformatIs('azure.fixed', GENERIC, 'vpc', 'fixed', 'Azure takes fixed VHDs only'),
    sizeMultiple('azure.size-mib', GENERIC, MiB, 'Azure'),
    sizeAtMost('azure.max-size', LIMITS, 4 * TiB, 'Azure'),
    noReferences('azure.no-parent', GENERIC, 'Azure takes a VHD with no parent (not a differencing disk)'),
    opensCleanly('azure.clean', GENERIC),
    wrappedIn('azure.uncompressed', GENERIC, [undefined], 'Azure takes the .vhd itself'),
    isArchive('azure.not-archive', GENERIC, false, 'Azure takes the .vhd itself'),
  ],
};
