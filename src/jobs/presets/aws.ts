/**
 * AWS VM Import/Export: a stream-optimized VMDK (it also takes VHD, VHDX
 * and raw; the preset writes the VMDK, the validator accepts them all) of
 * a single disk that names no other file.
 */
import { formatIn, isArchive, noReferences, opensCleanly, subformatIs, wrappedIn } from './rules.js';
import type { Preset } from './types.js';

const FORMATS = 'https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html#vmimport-image-formats';
const LIMITS = 'https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html#limitations-image';

export const aws: Preset = {
  name: 'aws',
  title: 'AWS VM Import',
  format: 'vmdk',
  options: ['subformat=streamOptimized', 'adapter_type=lsilogic'],
  rules: [
    formatIn('aws.format', FORMATS, ['vmdk', 'vpc', 'vhdx', 'raw'], 'AWS VM Import takes VMDK, VHD, VHDX or raw disks'),
    subformatIs('aws.stream-optimized', FORMATS, 'vmdk', 'streamOptimized', 'AWS VM Import takes stream-optimized VMDKs only'),
    noReferences('aws.single-file', LIMITS, 'AWS VM Import takes a self-contained disk (no parent or extent files)'),
    opensCleanly('aws.clean', FORMATS),
    wrappedIn('aws.uncompressed', FORMATS, [undefined], 'AWS VM Import takes the disk file itself'),
    isArchive('aws.not-archive', FORMATS, false, 'An OVA goes through the ova preset'),
  ],
};
