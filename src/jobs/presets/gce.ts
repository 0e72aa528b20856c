/**
 * Google Compute Engine image import: the disk's bytes as `disk.raw` in a
 * gzip'd tar (GNU tar's oldgnu headers in Google's instructions; ustar
 * reads the same), its size a whole number of GiB — the preset rounds the
 * virtual size up, the data is unchanged and the rest reads as zeros.
 */
import { formatIn, GiB, isArchive, opensCleanly, sizeMultiple, wrappedIn } from './rules.js';
import { onlyEntries, tarFormatIn } from './archive-rules.js';
import type { Preset } from './types.js';

const IMPORT = 'https://cloud.google.com/compute/docs/import/import-existing-image#create_image_file';
const BEST = 'https://cloud.google.com/solutions/image-management-best-practices#understanding_images';

export const gce: Preset = {
  name: 'gce',
  title: 'GCE',
  format: 'raw',
  options: [],
  sizeUnit: GiB,
  archive: 'gce',
  rules: [
    wrappedIn('gce.gzip', IMPORT, ['gzip'], 'GCE takes a gzip-compressed tar (.tar.gz)'),
    isArchive('gce.tar', BEST, true, 'GCE takes the disk inside a tar archive'),
    tarFormatIn('gce.tar-format', IMPORT, ['oldgnu', 'ustar'], 'GCE reads GNU (oldgnu) or ustar tar headers'),
    onlyEntries('gce.disk-raw', BEST, ['disk.raw'], "GCE reads the disk from one entry named 'disk.raw'"),
    formatIn('gce.raw', BEST, ['raw'], 'disk.raw holds the raw bytes of the disk'),
    sizeMultiple('gce.size-gib', IMPORT, GiB, 'GCE'),
    opensCleanly('gce.clean', BEST),
  ],
};
