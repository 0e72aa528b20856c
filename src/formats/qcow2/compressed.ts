/**
 * Compressed clusters: zlib (raw deflate, 4 KiB window, as QEMU writes it)
 * or zstd, decoded and encoded by the codec pool (core/codec-pool.ts) on
 * every core. Output is always bounded by the cluster size.
 */
import type { CodecName, DecodePiece } from '../../core/codec-kernels.js';
import { encodeUnitOnPool, encodeUnitsOnPool } from '../../core/codec-pool.js';
import { decodeInto, groupSpans, withSpan } from '../../core/compressed-run.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { settleAll } from '../../core/settle.js';
import type { ByteStore, CompressedExtent } from '../driver.js';
import { COMPRESSION_ZLIB, COMPRESSION_ZSTD } from './layout.js';

function codecOf(type: number): CodecName {
  if (type === COMPRESSION_ZLIB) return 'deflate-raw';
  if (type === COMPRESSION_ZSTD) return 'zstd';
  throw new UnsupportedError(`Unknown compression type ${type}`);
}

function decodeError(hostOffset: number, message: string): CorruptImageError {
  return new CorruptImageError(`Could not decompress the compressed cluster at host offset 0x${hostOffset.toString(16)}`, { offset: hostOffset, cause: new Error(message) });
}

/**
 * Decodes one compressed cluster into `out` (exactly one cluster).
 *
 * @throws {CorruptImageError} when the data does not decode to a full cluster
 */
export async function decompressCluster(type: number, input: Uint8Array, out: Uint8Array, hostOffset: number): Promise<void> {
  const codec = codecOf(type);
  const r = await decodeInto(codec, out.length, input, [{ at: 0, length: input.length, outAt: 0, from: 0, count: out.length }], out);
  if (r.failed) throw decodeError(hostOffset, r.failed.message);
}

/**
 * Reads and decodes the compressed extents `extents` (consecutive in guest
 * order, each at most one cluster) into `into`, which they cover exactly.
 * Clusters stored one after another are read together and decoded as one
 * batch; spans run in parallel.
 *
 * @throws {CorruptImageError} for a size out of bounds or data that does not decode to a full cluster
 */
export async function readCompressedRun(store: ByteStore, type: number, clusterSize: number, extents: readonly CompressedExtent[], into: Uint8Array): Promise<void> {
  const codec = codecOf(type);
  let outAt = 0;
  const placed = extents.map((e) => {
    if (e.hostLength > 2 * clusterSize || e.hostLength <= 0 || e.offset - e.unitOffset + e.length > clusterSize) {
      throw new CorruptImageError(`Compressed cluster at host offset 0x${e.hostOffset.toString(16)} has an invalid size`);
    }
    const p = { hostOffset: e.hostOffset, hostLength: e.hostLength, outAt, from: e.offset - e.unitOffset, count: e.length };
    outAt += e.length;
    return p;
  });
  await settleAll(
    groupSpans(placed, clusterSize).map((span) =>
      withSpan(store, span, async (input) => {
        const pieces: DecodePiece[] = span.units.map((u) => ({ at: u.hostOffset - span.start, length: u.hostLength, outAt: u.outAt, from: u.from, count: u.count }));
        const r = await decodeInto(codec, clusterSize, input, pieces, into);
        if (r.failed) throw decodeError(span.units[r.failed.index]?.hostOffset ?? span.start, r.failed.message);
      }),
    ),
  );
}

/**
 * Compresses one cluster the way QEMU does; returns undefined when the
 * result would not be smaller than a cluster (the caller writes it
 * uncompressed). `data` must stay unchanged until this resolves; with
 * `handOver`, a buffer of its own, it may move to a codec worker without a
 * copy and must not be used afterwards.
 */
export async function compressCluster(type: number, data: Uint8Array, handOver = false): Promise<Uint8Array | undefined> {
  const out = await encodeUnitOnPool(codecOf(type), data, handOver);
  return out.length >= data.length ? undefined : out;
}

/**
 * Compresses a run of whole clusters at once, as {@link compressCluster}
 * does each: the results packed back to back in `out`, `sizes[i]` the bytes
 * of cluster i there (0: written uncompressed; -1: all zeros, when
 * `skipZeros`). `data` must stay unchanged until this resolves.
 */
export async function compressClusters(type: number, clusterSize: number, data: Uint8Array, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<void> {
  await encodeUnitsOnPool(codecOf(type), data, clusterSize, skipZeros, out, sizes);
}
