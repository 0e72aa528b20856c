/**
 * Decoding one dmg chunk into its guest bytes, bounded by the chunk's
 * sector count (≤ 64 MiB, checked at open): zlib (UDZO) and bzip2 (UDBZ)
 * streams must end exactly there, as QEMU requires (Z_STREAM_END /
 * BZ_STREAM_END with every output byte filled); so must lzfse (ULFO)
 * streams, where liblzfse would silently truncate or leave bytes unwritten.
 */
import { promisify } from 'node:util';
import type { ZlibOptions } from 'node:zlib';

import { decodeBzip2 } from '../../core/bzip2.js';
import { zlib } from '../../core/lazy-builtins.js';
import { decodeLzfse } from '../../core/lzfse.js';
import type { ByteStore } from '../driver.js';
import { readFailed, readHost } from '../read-only/common.js';
import { CHUNK, type ChunkTable } from './chunks.js';

const inflateAsync = (input: Uint8Array, options: ZlibOptions): Promise<Buffer> => promisify(zlib().inflate)(input, options);
const SECTOR = 512;

/** The guest bytes of compressed chunk `i`; fails with EIO as qemu's read does. */
export async function decodeChunk(store: ByteStore, table: ChunkTable, i: number): Promise<Uint8Array> {
  const size = (table.counts[i] as number) * SECTOR;
  const stored = await readHost(store, table.offsets[i] as number, table.lengths[i] as number);
  try {
    switch (table.types[i]) {
      case CHUNK.zlib: {
        const out = await inflateAsync(stored, { maxOutputLength: Math.max(1, size) });
        if (out.length !== size) throw new Error(`zlib chunk inflates to ${out.length} bytes, not ${size}`);
        return out;
      }
      case CHUNK.bzip2:
        return decodeBzip2(stored, size);
      case CHUNK.lzfse:
        return decodeLzfse(stored, size);
      default:
        throw new Error(`chunk type ${(table.types[i] as number).toString(16)} is not compressed`);
    }
  } catch (err) {
    throw readFailed(err);
  }
}
