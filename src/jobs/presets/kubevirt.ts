/**
 * KubeVirt CDI: raw or qcow2 (optionally gzip'd), with no backing file —
 * the importer refuses images that name other files.
 */
import { formatIn, isArchive, noReferences, opensCleanly, wrappedIn } from './rules.js';
import type { Preset } from './types.js';

const FORMATS = 'https://github.com/kubevirt/containerized-data-importer/blob/main/doc/supported_operations.md';
const BACKING = 'https://github.com/kubevirt/containerized-data-importer/blob/main/pkg/image/qemu.go (checkIfURLIsValid: "Image is invalid" for a backing file)';

export const kubevirt: Preset = {
  name: 'kubevirt',
  title: 'KubeVirt CDI',
  format: 'qcow2',
  options: ['compat=1.1'],
  rules: [
    formatIn('kubevirt.format', FORMATS, ['qcow2', 'raw'], 'KubeVirt CDI imports qcow2 or raw disks'),
    noReferences('kubevirt.no-backing', BACKING, 'KubeVirt CDI refuses images with a backing file'),
    opensCleanly('kubevirt.clean', BACKING),
    wrappedIn('kubevirt.compression', FORMATS, [undefined, 'gzip'], 'KubeVirt CDI takes the image plain or gzip-compressed'),
    isArchive('kubevirt.not-archive', FORMATS, false, 'KubeVirt CDI takes the image itself, not a tar archive'),
  ],
};
