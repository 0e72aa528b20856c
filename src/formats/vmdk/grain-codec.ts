/**
 * Compressed grains (streamOptimized): zlib-format deflate data (with the
 * zlib header, as QEMU's compress()/uncompress()), optionally preceded by a
 * grain marker {lba u64, size u32}. Inflation is bounded by the grain size.
 */
import { promisify } from 'node:util';
import { deflate, inflate } from 'node:zlib';

import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { GRAIN_MARKER_BYTES, SECTOR } from './layout.js';

const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

/** Builds marker + compressed data, padded to whole sectors. */
export async function encodeGrain(lbaSector: number, data: Uint8Array): Promise<Uint8Array> {
  const z = await deflateAsync(data);
  const out = new Uint8Array(Math.ceil((GRAIN_MARKER_BYTES + z.length) / SECTOR) * SECTOR);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(lbaSector), true);
  v.setUint32(8, z.length, true);
  out.set(z, GRAIN_MARKER_BYTES);
  return out;
}

/** One metadata marker sector {val u64, size 0, type u32}. */
export function metadataMarker(val: number, type: number): Uint8Array {
  const out = new Uint8Array(SECTOR);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(val), true);
  v.setUint32(12, type, true);
  return out;
}

/**
 * Reads and inflates the grain at `host` into `unit` (zero-filled past the
 * inflated bytes). `need` is how many bytes the inflated grain must cover.
 */
export async function readCompressedGrain(
  store: ByteStore,
  host: number,
  markers: boolean,
  grainBytes: number,
  need: number,
  unit: Uint8Array,
): Promise<void> {
  const maxLen = grainBytes * LIMITS.vmdkMaxCompressedGrainFactor;
  let dataAt = host;
  let len = maxLen;
  if (markers) {
    const m = new Uint8Array(GRAIN_MARKER_BYTES);
    await store.read(host, m);
    len = new DataView(m.buffer).getUint32(8, true);
    dataAt = host + GRAIN_MARKER_BYTES;
    if (len === 0 || len > maxLen) {
      throw new CorruptImageError(`Invalid compressed grain marker size ${len} at offset ${host}`, { file: store.name, offset: host });
    }
  }
  const z = new Uint8Array(len);
  await store.read(dataAt, z);
  let out: Buffer;
  try {
    out = await inflateAsync(z, { maxOutputLength: grainBytes });
  } catch (err) {
    throw new CorruptImageError(`Compressed grain at offset ${host} does not inflate to at most ${grainBytes} bytes`, { file: store.name, offset: host, cause: err });
  }
  if (out.length < need) {
    throw new CorruptImageError(`Compressed grain at offset ${host} inflates to ${out.length} bytes, fewer than the ${need} it must hold`, { file: store.name, offset: host });
  }
  const n = Math.min(out.length, unit.length);
  unit.set(out.subarray(0, n));
  unit.fill(0, n);
}
