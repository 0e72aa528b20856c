/**
 * An open VDI: opening (header, then the block map, both checked before
 * use), mapping, `info` facts, and writes that allocate blocks at the end
 * of the data area, as QEMU's vdi driver does.
 */
import { CorruptImageError } from '../../core/errors.js';
import { splitAt } from '../../core/split.js';
import type { ByteStore, Extent, FormatDescription, FormatImage, ImageChecker, ImageWriter } from '../driver.js';
import { BlockMapCheck, isAllocated } from './block-map.js';
import { vdiChecker } from './check.js';
import { parseVdiHeader, VDI_FIELD, VDI_HEADER_SIZE, VDI_TYPE, type VdiHeader } from './header.js';
import { VdiBlockMap } from './paged-map.js';
import { pushExtent } from '../extent-merge.js';

/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 256;
const ZEROS = new Uint8Array(1024 * 1024);

/** Mutable state of an open VDI. */
interface VdiState {
  readonly store: ByteStore;
  readonly header: VdiHeader;
  readonly map: VdiBlockMap;
  blocksAllocated: number;
}

/**
 * Reads and checks the header and block map. A writable open also refuses
 * a block map where a new block could land on a used one. An open for
 * `check` accepts a block map or data area cut off by the end of the file:
 * like QEMU it reads zeros there, and the check reports what they claim.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export async function openVdi(store: ByteStore, writable: boolean, forCheck = false): Promise<VdiImage> {
  const fileSize = await store.size();
  const head = new Uint8Array(VDI_HEADER_SIZE);
  await store.read(0, head);
  // a header cut short reads as zeros past the end, as QEMU reads it
  const header = parseVdiHeader(head, forCheck ? Infinity : fileSize);
  const map = new VdiBlockMap(store, header.offsetBmap, header.blocksInImage);
  // a check never writes (VDI has no repair: `check -r` answers that it does not support checks)
  if (writable && !forCheck) await checkForWrite(map, header);
  return new VdiImage({ store, header, map, blocksAllocated: header.blocksAllocated }, writable);
}

/** Refuses to write where a new block could land on a used one: the whole map is scanned once, a chunk at a time. */
async function checkForWrite(map: VdiBlockMap, header: VdiHeader): Promise<void> {
  const check = new BlockMapCheck(header.blocksInImage, header.blocksAllocated, { forWrite: true, maxFindings: 1 });
  for await (const { first, entries } of map.chunks()) {
    check.add(entries, first);
    if (check.found > 0) break;
  }
  const bad = check.finish().findings.find((f) => f.kind !== 'allocated-mismatch');
  if (bad) {
    throw new CorruptImageError(`VDI block map is inconsistent (${bad.message}); vdisk will not write to this image`, {
      offset: header.offsetBmap + ('block' in bad ? bad.block * 4 : 0),
    });
  }
}

/** One open VDI image. */
export class VdiImage implements FormatImage {
  readonly format = 'vdi';
  readonly store: ByteStore;
  readonly virtualSize: number;
  readonly granularity: number;
  readonly statusSpan: number;
  readonly backing = undefined;
  readonly writer: ImageWriter | undefined;
  /** `qemu-img check`: the block map (no repair). */
  readonly checker: ImageChecker = vdiChecker(() => ({ map: this.#s.map, blocksInImage: this.#s.header.blocksInImage, blocksAllocated: this.#s.blocksAllocated }));
  readonly #s: VdiState;

  constructor(state: VdiState, writable: boolean) {
    this.#s = state;
    this.store = state.store;
    this.virtualSize = state.header.diskSize;
    this.granularity = state.header.blockSize;
    this.statusSpan = this.granularity; // vdi_co_block_status answers one block
    // One block per request: BlockDevice splits at the boundary.
    this.writer = writable ? { requestBoundary: this.granularity, write: (o, d) => this.#write(o, d), writeZeroes: (o, n) => this.#writeZeroes(o, n) } : undefined;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const { map, header } = this.#s;
    const bs = header.blockSize;
    const isStatic = header.imageType === VDI_TYPE.static;
    const out: Extent[] = [];
    let page = await map.page(Math.floor(offset / bs));
    // stop once the extents the caller uses are complete (the next one has begun)
    for (let pos = offset; pos < offset + length && out.length < MAX_EXTENTS && out.length <= maxExtents; ) {
      const idx = Math.floor(pos / bs);
      const inBlock = pos - idx * bs;
      const n = Math.min(offset + length - pos, bs - inBlock);
      if (idx >= page.first + page.entries.length) page = await map.page(idx);
      const entry = page.entries[idx - page.first] as number;
      // qemu: static images ask the host file for holes; blocks without data are zeros this layer answers for.
      if (isAllocated(entry)) pushExtent(out, { kind: 'data', offset: pos, length: n, store: this.store, hostOffset: header.offsetData + entry * bs + inBlock, recurse: isStatic });
      else pushExtent(out, { kind: 'zero', offset: pos, length: n, allocated: false });
      pos += n;
    }
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  async describe(): Promise<FormatDescription> {
    return { clusterSize: this.#s.header.blockSize, dirty: false };
  }

  async flush(): Promise<void> {
    if (!this.store.readOnly) await this.store.flush();
  }

  async close(): Promise<void> {
    if (this.writer && !this.store.readOnly) await this.store.flush();
    await this.store.close();
  }

  async #write(offset: number, data: Uint8Array): Promise<void> {
    const { map, header, store } = this.#s;
    const bs = header.blockSize;
    const idx = Math.floor(offset / bs);
    const inBlock = offset - idx * bs;
    if (inBlock + data.length > bs) throw new RangeError(`VDI write [${offset}, +${data.length}) crosses a block boundary`);
    const entry = await map.get(idx);
    if (isAllocated(entry)) await store.write(header.offsetData + entry * bs + inBlock, data);
    else await this.#allocate(idx, inBlock, data);
  }

  /**
   * A new block at index `blocks_allocated`: the whole block (zeros around
   * the data), then the allocated count, then the map entry, so a crash
   * leaves at worst an unreferenced block.
   */
  async #allocate(idx: number, inBlock: number, chunk: Uint8Array): Promise<void> {
    const s = this.#s;
    const { header, store } = s;
    const bs = header.blockSize;
    const entry = s.blocksAllocated;
    if (entry >= header.blocksInImage) {
      throw new CorruptImageError(`VDI image '${store.name}' has no free block left (${entry} of ${header.blocksInImage} allocated)`, { offset: VDI_FIELD.blocksAllocated });
    }
    const block = new Uint8Array(bs);
    block.set(chunk, inBlock);
    await store.write(header.offsetData + entry * bs, block);
    const le = new Uint8Array(4);
    const v = new DataView(le.buffer);
    v.setUint32(0, entry + 1, true);
    await store.write(VDI_FIELD.blocksAllocated, le);
    s.blocksAllocated = entry + 1;
    v.setUint32(0, entry, true);
    await store.write(header.offsetBmap + idx * 4, le);
    s.map.set(idx, entry);
  }

  async #writeZeroes(offset: number, length: number): Promise<void> {
    // Unallocated and discarded blocks already read as zeros (the request lies in one block).
    if (!isAllocated(await this.#s.map.get(Math.floor(offset / this.#s.header.blockSize)))) return;
    for (const p of splitAt(offset, length, ZEROS.length)) await this.#write(p.offset, ZEROS.subarray(0, p.length));
  }
}
