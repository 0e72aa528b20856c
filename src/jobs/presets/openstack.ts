/**
 * OpenStack Glance: qcow2 that names no other file — Glance's format
 * inspector refuses a backing file or an external data file
 * (OSSA-2024-001) — and reads as one format only.
 */
import { formatIn, isArchive, noReferences, opensCleanly, wrappedIn } from './rules.js';
import type { Preset } from './types.js';

const FORMATS = 'https://docs.openstack.org/image-guide/image-formats.html';
const OSSA = 'https://security.openstack.org/ossa/OSSA-2024-001.html';

export const openstack: Preset = {
  name: 'openstack',
  title: 'OpenStack',
  format: 'qcow2',
  options: ['compat=1.1'],
  rules: [
    formatIn('openstack.format', FORMATS, ['qcow2'], 'The openstack preset uploads qcow2 (disk_format=qcow2)'),
    noReferences('openstack.no-external', OSSA, 'Glance refuses qcow2 images with a backing file or a data file'),
    opensCleanly('openstack.clean', OSSA),
    wrappedIn('openstack.uncompressed', FORMATS, [undefined], 'Glance takes the image file itself'),
    isArchive('openstack.not-archive', FORMATS, false, 'Glance takes the image file itself'),
  ],
};
