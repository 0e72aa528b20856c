/**
 * OVA: one ustar archive holding the OVF descriptor first, then a
 * stream-optimized VMDK, then a manifest with the SHA-256 of both (OVF 2
 * lets the manifest come last, which keeps the package streamable).
 */
import { formatIn, isArchive, noReferences, opensCleanly, subformatIs, wrappedIn } from './rules.js';
import { firstEntry, manifestListsFiles, ovfReferencesDisks, tarFormatIn } from './archive-rules.js';
import type { Preset } from './types.js';

const OVF = 'https://www.dmtf.org/sites/default/files/standards/documents/DSP0243_2.1.1.pdf';

export const ova: Preset = {
  name: 'ova',
  title: 'OVA',
  format: 'vmdk',
  options: ['subformat=streamOptimized', 'adapter_type=lsilogic'],
  archive: 'ova',
  rules: [
    wrappedIn('ova.uncompressed', `${OVF} (5.3: an OVA is an uncompressed tar)`, [undefined], 'An OVA is a plain tar'),
    isArchive('ova.tar', `${OVF} (5.3)`, true, 'An OVA is a tar archive'),
    tarFormatIn('ova.ustar', `${OVF} (5.3: USTAR format)`, ['ustar'], 'OVF packages use USTAR headers'),
    firstEntry('ova.ovf-first', `${OVF} (5.3: the descriptor is the first file)`, /\.ovf$/i, 'The OVF descriptor must be the first entry'),
    ovfReferencesDisks('ova.references', `${OVF} (7.1: References)`),
    manifestListsFiles('ova.manifest', `${OVF} (5.1: manifest)`),
    formatIn('ova.disk-format', `${OVF} (9.1: disk format URI)`, ['vmdk'], 'The disk is a VMDK'),
    subformatIs('ova.stream-optimized', `${OVF} (9.1: #streamOptimized)`, 'vmdk', 'streamOptimized', 'The disk is a stream-optimized VMDK'),
    noReferences('ova.single-file', `${OVF} (7.1)`, 'The disk names no file outside the package'),
    opensCleanly('ova.clean', OVF),
  ],
};
