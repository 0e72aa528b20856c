/**
 * qcow's compressed clusters: raw deflate with a 4 KiB window (QEMU's
 * deflateInit2(level default, windowBits -12, memLevel 9)), through
 * node:zlib on the thread pool. Output is bounded by the cluster size.
 */
import { promisify } from 'node:util';
import type { ZlibOptions } from 'node:zlib';

import { zlib } from '../../core/lazy-builtins.js';

const inflateRaw = (input: Uint8Array, options: ZlibOptions): Promise<Buffer> => promisify(zlib().inflateRaw)(input, options);
const deflateRaw = (input: Uint8Array, options: ZlibOptions): Promise<Buffer> => promisify(zlib().deflateRaw)(input, options);

/**
 * Inflates `input` into `out` (one cluster). As QEMU's decompress_buffer:
 * the cluster must come out whole; a stream that ends early, or is cut off
 * before filling it, is an error, while data past a full cluster is never
 * decoded. Returns false on failure (the caller reports EIO).
 */
export async function inflateCluster(input: Uint8Array, out: Uint8Array): Promise<boolean> {
  try {
    // the fast path: one pass on the thread pool; a cut-off stream flushes what it has
    const res = await inflateRaw(input, { windowBits: 12, maxOutputLength: out.length, finishFlush: zlib().constants.Z_SYNC_FLUSH });
    out.set(res);
    return res.length === out.length;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') return false;
    return (await inflateInto(input, out)) === out.length;
  }
}

/** Inflates until `out` is full or the stream ends, keeping one chunk in memory; returns the bytes written. */
function inflateInto(input: Uint8Array, out: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const z = zlib().createInflateRaw({ windowBits: 12, chunkSize: Math.max(out.length, 1024), finishFlush: zlib().constants.Z_SYNC_FLUSH });
    let n = 0;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      z.destroy();
      resolve(n);
    };
    z.on('data', (chunk: Buffer) => {
      const take = Math.min(chunk.length, out.length - n);
      out.set(chunk.subarray(0, take), n);
      n += take;
      if (n === out.length) settle();
    });
    z.on('end', settle);
    z.on('error', settle);
    z.end(input);
  });
}

/**
 * Compresses one cluster as qcow_co_pwritev_compressed does; null when the
 * result is not smaller than the cluster (QEMU then writes it plain).
 */
export async function deflateCluster(cluster: Uint8Array): Promise<Uint8Array | null> {
  const out = await deflateRaw(cluster, { windowBits: 12, memLevel: 9 });
  return out.length < cluster.length ? new Uint8Array(out.buffer, out.byteOffset, out.length) : null;
}
