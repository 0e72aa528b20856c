/**
 * `create -f qed` (bdrv_qed_co_create): the size silently rounded up to
 * whole sectors, qemu's checks and messages, then one header cluster
 * (header, backing file name right after it) and an empty L1 table in the
 * next clusters. Only a raw backing format is recorded (the no-probe bit);
 * any other is probed again when the image is opened, as in qemu.
 */
import { checkBackingFormatOption } from '../blockdev-drivers.js';
import { encodeName } from '../../core/byte-names.js';
import { InvalidArgumentError } from '../../core/errors.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import {
  encodeQedHeader,
  isClusterSizeValid,
  isImageSizeValid,
  isTableSizeValid,
  QED_DEFAULT_CLUSTER_SIZE,
  QED_DEFAULT_TABLE_SIZE,
  QED_F_BACKING_FILE,
  QED_F_BACKING_FORMAT_NO_PROBE,
  QED_HEADER_SIZE,
  QED_MAX_CLUSTER_SIZE,
  QED_MAX_TABLE_SIZE,
  QED_MIN_CLUSTER_SIZE,
  QED_MIN_TABLE_SIZE,
  qedMaxImageSize,
  type QedHeader,
} from './header.js';

/** QEMU's qed create options, in its list order. */
export const QED_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: 'Image format of the base image' },
  { name: 'cluster_size', type: 'size', help: 'Cluster size (in bytes)', default: String(QED_DEFAULT_CLUSTER_SIZE) },
  { name: 'table_size', type: 'size', help: 'L1/L2 table size (in clusters)' },
];

/** Zeros written per call for the L1 table (up to 1 GiB). */
const ZERO_CHUNK = new Uint8Array(1024 * 1024);

function sizeOption(options: CreateRequest['options'], name: string, fallback: number): number {
  const v = options.get(name);
  return typeof v === 'number' ? v : fallback;
}

/**
 * Writes a new QED image as `qemu-img create -f qed` does.
 *
 * @throws {InvalidArgumentError} EINVAL with qemu's message for a cluster size, table size or image size it refuses
 */
export async function createQed(store: ByteStore, request: CreateRequest): Promise<void> {
  // The QAPI visit of qemu's create options checks the backing format before anything else.
  checkBackingFormatOption(request.options.get('backing_fmt'));
  const clusterSize = sizeOption(request.options, 'cluster_size', QED_DEFAULT_CLUSTER_SIZE);
  const tableSize = sizeOption(request.options, 'table_size', QED_DEFAULT_TABLE_SIZE);
  const size = Math.ceil(request.size / 512) * 512;
  if (!isClusterSizeValid(clusterSize)) {
    throw new InvalidArgumentError(`QED cluster size must be within range [${QED_MIN_CLUSTER_SIZE}, ${QED_MAX_CLUSTER_SIZE}] and power of 2`);
  }
  if (!isTableSizeValid(tableSize)) {
    throw new InvalidArgumentError(`QED table size must be within range [${QED_MIN_TABLE_SIZE}, ${QED_MAX_TABLE_SIZE}] and power of 2`);
  }
  if (!isImageSizeValid(BigInt(size), clusterSize, tableSize)) {
    throw new InvalidArgumentError(`QED image size must be a non-zero multiple of cluster size and less than ${qedMaxImageSize(clusterSize, tableSize)} bytes`);
  }
  const backing = request.options.get('backing_file');
  const name = typeof backing === 'string' ? encodeName(backing) : undefined;
  let features = 0n;
  if (name) features |= QED_F_BACKING_FILE | (request.options.get('backing_fmt') === 'raw' ? QED_F_BACKING_FORMAT_NO_PROBE : 0n);
  const header: QedHeader = {
    clusterSize,
    tableSize,
    headerSize: 1,
    features,
    compatFeatures: 0n,
    autoclearFeatures: 0n,
    l1TableOffset: BigInt(clusterSize),
    imageSize: BigInt(size),
    backingNameOffset: name ? QED_HEADER_SIZE : 0,
    backingNameSize: name ? name.length : 0,
  };
  // QED ties allocation to the file length: a new image starts from an empty file
  await store.truncate(0);
  await store.write(0, encodeQedHeader(header));
  if (name?.length) await store.write(QED_HEADER_SIZE, name);
  const l1Bytes = clusterSize * tableSize;
  for (let pos = 0; pos < l1Bytes; pos += ZERO_CHUNK.length) {
    await store.write(clusterSize + pos, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, l1Bytes - pos)));
  }
}
