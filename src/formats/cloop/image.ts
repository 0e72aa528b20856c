/**
 * An open cloop image (compressed loop, V2.0), read-only as in QEMU: each
 * block is one zlib stream that must inflate to exactly the block size;
 * the last blocks read are kept decoded.
 */
import { promisify } from 'node:util';
import type { ZlibOptions } from 'node:zlib';

import { zlib } from '../../core/lazy-builtins.js';
import type { ByteStore, CompressedExtent, Extent, FormatDescription, FormatImage, OpenOptions } from '../driver.js';
import { readFailed, readHost, refuseWritable } from '../read-only/common.js';
import { UnitCache } from '../read-only/unit-cache.js';
import { type CloopHeader, readCloopHeader } from './header.js';

const inflateAsync = (input: Uint8Array, options: ZlibOptions): Promise<Buffer> => promisify(zlib().inflate)(input, options);
const SECTOR = 512;
/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 1024;

/** Opens a cloop image read-only. */
export async function openCloop(store: ByteStore, options: OpenOptions): Promise<CloopImage> {
  refuseWritable(options);
  return new CloopImage(store, await readCloopHeader(store));
}

/** One open cloop image. */
export class CloopImage implements FormatImage {
  readonly format = 'cloop';
  readonly store: ByteStore;
  readonly virtualSize: number;
  /** qemu's request alignment (the driver reports no cluster size). */
  readonly granularity = SECTOR;
  readonly backing = undefined;
  /** qemu's cloop driver has no block status: everything is allocated data. */
  readonly opaqueStatus = true;
  readonly #h: CloopHeader;
  readonly #cache = new UnitCache();

  constructor(store: ByteStore, header: CloopHeader) {
    this.store = store;
    this.#h = header;
    this.virtualSize = header.virtualSize;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const { blockSize, offsets } = this.#h;
    const out: Extent[] = [];
    const end = offset + length;
    for (let pos = offset; pos < end && out.length < Math.min(maxExtents, MAX_EXTENTS); ) {
      const block = Math.floor(pos / blockSize);
      const unitOffset = block * blockSize;
      const n = Math.min(end, unitOffset + blockSize) - pos;
      out.push({ kind: 'compressed', offset: pos, length: n, hostOffset: offsets.get(block), hostLength: offsets.step(block + 1), unitOffset });
      pos += n;
    }
    return out;
  }

  async readCompressedPart(e: CompressedExtent, into: Uint8Array): Promise<void> {
    const block = e.unitOffset / this.#h.blockSize;
    const unit = await this.#cache.get(block, this.#h.blockSize, () => this.#decode(block));
    const at = e.offset - e.unitOffset;
    into.set(unit.subarray(at, at + into.length));
  }

  async #decode(block: number): Promise<Uint8Array> {
    const { blockSize, offsets } = this.#h;
    const stored = await readHost(this.store, offsets.get(block), offsets.step(block + 1));
    try {
      const out = await inflateAsync(stored, { maxOutputLength: blockSize });
      if (out.length !== blockSize) throw new Error(`cloop block ${block} inflates to ${out.length} bytes, not ${blockSize}`);
      return out;
    } catch (err) {
      throw readFailed(err);
    }
  }

  async describe(): Promise<FormatDescription> {
    return {};
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    await this.store.close();
  }
}
