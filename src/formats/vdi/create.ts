/**
 * `create -f vdi`: QEMU's options (`static` → every block allocated up
 * front) and layout: header at 0, block map at 0x200 rounded up to whole
 * sectors, data right after it.
 */
import { UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { randomBytes } from '../../core/random.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { VDI_UNALLOCATED } from './block-map.js';
import { serializeVdiHeader, VDI_BLOCK_SIZE, VDI_HEADER_SIZE, VDI_TYPE } from './header.js';

/** Map entries written per chunk on create. */
const MAP_CHUNK_ENTRIES = 1024 * 1024;

/** QEMU's vdi create options, in its list order (`cluster_size` is compiled out of QEMU). */
export const VDI_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'static', type: 'bool', help: 'VDI static (pre-allocated) image', default: 'off' },
];

/** Writes a new VDI as `qemu-img create -f vdi` does. */
export async function createVdi(store: ByteStore, request: CreateRequest): Promise<void> {
  const size = request.size;
  if (size > LIMITS.vdiMaxDiskSize) {
    throw new UnsupportedError(`Unsupported VDI image size (size is 0x${size.toString(16)}, max supported is 0x${LIMITS.vdiMaxDiskSize.toString(16)})`);
  }
  const isStatic = request.options.get('static') === true;
  const blocks = Math.ceil(size / VDI_BLOCK_SIZE);
  const bmapSize = Math.ceil((blocks * 4) / 512) * 512;
  const offsetData = VDI_HEADER_SIZE + bmapSize;
  const header = serializeVdiHeader({
    imageType: isStatic ? VDI_TYPE.static : VDI_TYPE.dynamic,
    offsetBmap: VDI_HEADER_SIZE,
    offsetData,
    diskSize: size,
    blocksInImage: blocks,
    blocksAllocated: isStatic ? blocks : 0,
    uuidImage: randomBytes(16),
    uuidLastSnap: randomBytes(16),
  });
  await store.write(0, header);
  await writeBlockMap(store, blocks, bmapSize, isStatic);
  if (isStatic) await store.truncate(offsetData + blocks * VDI_BLOCK_SIZE);
}

/** The map of a new image (up to 2 GiB), a chunk at a time: block i at image block i when static, else unallocated. */
async function writeBlockMap(store: ByteStore, blocks: number, bmapSize: number, isStatic: boolean): Promise<void> {
  for (let first = 0; first * 4 < bmapSize; first += MAP_CHUNK_ENTRIES) {
    const chunk = new Uint8Array(Math.min(MAP_CHUNK_ENTRIES * 4, bmapSize - first * 4));
    const v = new DataView(chunk.buffer);
    const end = Math.min(blocks - first, chunk.length / 4);
    for (let i = 0; i < end; i++) v.setUint32(i * 4, isStatic ? first + i : VDI_UNALLOCATED, true);
    await store.write(VDI_HEADER_SIZE + first * 4, chunk);
  }
}
