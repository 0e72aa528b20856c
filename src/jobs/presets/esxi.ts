/**
 * VMware ESXi / vSphere import: a stream-optimized VMDK (the form OVF
 * packages and the upload paths take), an LSI Logic adapter, no parent.
 */
import { formatIn, isArchive, noReferences, opensCleanly, subformatIs, wrappedIn } from './rules.js';
import type { Preset } from './types.js';

const VMDK = 'https://www.vmware.com/app/vmdk/?src=vmdk (Virtual Disk Format 5.0, "Stream-Optimized Compressed Sparse Extents")';
const OVF = 'https://www.dmtf.org/sites/default/files/standards/documents/DSP0243_2.1.1.pdf (OVF 2.1.1, 5.2 and 9.1: disk format URI #streamOptimized)';

export const esxi: Preset = {
  name: 'esxi',
  title: 'ESXi',
  format: 'vmdk',
  options: ['subformat=streamOptimized', 'adapter_type=lsilogic'],
  rules: [
    formatIn('esxi.format', VMDK, ['vmdk'], 'ESXi imports VMDK disks'),
    subformatIs('esxi.stream-optimized', OVF, 'vmdk', 'streamOptimized', 'ESXi imports stream-optimized VMDKs'),
    noReferences('esxi.single-file', VMDK, 'The disk must be self-contained (no parent or extent files)'),
    opensCleanly('esxi.clean', VMDK),
    wrappedIn('esxi.uncompressed', VMDK, [undefined], 'ESXi takes the .vmdk itself'),
    isArchive('esxi.not-archive', VMDK, false, 'An OVA goes through the ova preset'),
  ],
};
