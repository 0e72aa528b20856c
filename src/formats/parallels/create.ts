/**
 * `create -f parallels` as parallels_co_create does it: the
 * "WithouFreSpacExt" header, a zeroed BAT filling whole clusters, no data.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { PRL_DEFAULT_CLUSTER_SIZE, PRL_HEADER_SIZE, PRL_MAX_IMAGE_FACTOR, serializePrlHeader } from './header.js';

const SECTOR = 512;
/** QEMU's bound: INT64_MAX / MAX_PARALLELS_IMAGE_FACTOR. */
const PRL_MAX_CLUSTER_SIZE = 0x7fffffff;

/** QEMU's parallels create options, in its list order. */
export const PRL_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'cluster_size', type: 'size', help: 'Parallels image cluster size', default: String(PRL_DEFAULT_CLUSTER_SIZE) },
];

function roundUp(n: number): number {
  return Math.ceil(n / SECTOR) * SECTOR;
}

/**
 * The sizes QEMU checks, after rounding both up to whole sectors as it does
 * silently. A cluster size of 2^31 - 1 or more is "too large" (INT64_MAX /
 * 2^32); the image may have at most 2^32 clusters.
 *
 * @throws {InvalidArgumentError} "Cluster size is too large", "Image size is too large for this cluster size"
 */
function prlCreateSizes(size: number, options: CreateRequest['options']): { size: number; clusterSize: number } {
  const cs = options.get('cluster_size');
  const clusterSize = roundUp(typeof cs === 'number' ? cs : PRL_DEFAULT_CLUSTER_SIZE);
  const total = roundUp(size);
  if (clusterSize >= PRL_MAX_CLUSTER_SIZE) throw new InvalidArgumentError('Cluster size is too large');
  if (total >= PRL_MAX_IMAGE_FACTOR * clusterSize) throw new InvalidArgumentError('Image size is too large for this cluster size');
  return { size: total, clusterSize };
}

/** Writes a new, empty image: the header sector, then the rest of the BAT clusters zeroed (allocated, as QEMU's zero write leaves them). */
export async function createParallels(store: ByteStore, request: CreateRequest): Promise<void> {
  const { size, clusterSize } = prlCreateSizes(request.size, request.options);
  const batEntries = Math.ceil(size / clusterSize);
  const batBytes = Math.ceil((PRL_HEADER_SIZE + 4 * batEntries) / clusterSize) * clusterSize;
  const first = new Uint8Array(SECTOR);
  first.set(serializePrlHeader({ size, clusterSize, batEntries, dataOffSectors: batBytes / SECTOR }));
  await store.write(0, first);
  if (batBytes > SECTOR) {
    if (store.preallocate) await store.preallocate(SECTOR, batBytes - SECTOR, 'falloc');
    else await store.truncate(batBytes);
  }
}
