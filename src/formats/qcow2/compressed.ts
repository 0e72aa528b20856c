/**
 * Compressed clusters: zlib (raw deflate, 4 KiB window, as QEMU writes it)
 * through node:zlib on the thread pool; zstd decoding through fzstd and
 * encoding through @bokuweb/zstd-wasm.
 * Output is always bounded by the cluster size.
 */
import { promisify } from 'node:util';
import { createInflateRaw, deflateRaw as deflateRawCb, inflateRaw as inflateRawCb } from 'node:zlib';

import { Decompress as ZstdStream, decompress as zstdDecompress } from 'fzstd';

import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { COMPRESSION_ZLIB, COMPRESSION_ZSTD } from './layout.js';

const inflateRaw = promisify(inflateRawCb);
const deflateRaw = promisify(deflateRawCb);

const ZSTD_DEFAULT_LEVEL = 3;

type ZstdModule = typeof import('@bokuweb/zstd-wasm');
let zstdModule: Promise<ZstdModule> | undefined;

/** The zstd encoder (WASM shipped inside its package: Node 20's zlib has no zstd), loaded once on first use. */
function zstdEncoder(): Promise<ZstdModule> {
  zstdModule ??= import('@bokuweb/zstd-wasm').then(async (m) => {
    await m.init();
    return m;
  });
  return zstdModule;
}

/** Largest zstd window accepted for frames without a content size. */
const MAX_ZSTD_WINDOW = 8 * 1024 * 1024;

/**
 * Decodes one compressed cluster into `out` (exactly one cluster).
 *
 * @throws {CorruptImageError} when the data does not decode to a full cluster
 */
export async function decompressCluster(type: number, input: Uint8Array, out: Uint8Array, hostOffset: number): Promise<void> {
  try {
    if (type === COMPRESSION_ZLIB) {
      await inflateCluster(input, out);
      return;
    }
    if (type === COMPRESSION_ZSTD) {
      decodeZstd(input, out);
      return;
    }
  } catch (err) {
    throw new CorruptImageError(`Could not decompress the compressed cluster at host offset 0x${hostOffset.toString(16)}`, { offset: hostOffset, cause: err });
  }
  throw new UnsupportedError(`Unknown compression type ${type}`);
}

/** Inflates one zlib cluster into `out` (exactly one cluster). */
async function inflateCluster(input: Uint8Array, out: Uint8Array): Promise<void> {
  let n: number;
  try {
    // the fast path: one pass on the thread pool, output capped at a cluster
    const res = await inflateRaw(input, { maxOutputLength: out.length });
    out.set(res);
    n = res.length;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') throw err;
    n = await inflateInto(input, out); // a stream longer than a cluster: keep its first cluster
  }
  if (n !== out.length) throw new Error('short output');
}

/**
 * Inflates raw deflate data into `out` until it is full or the stream ends;
 * returns the bytes written. Like QEMU (inflate into one cluster, then
 * accept Z_BUF_ERROR once the output is full), data beyond the cluster is
 * ignored rather than an error, and never decoded: memory stays at one
 * zlib chunk.
 */
function inflateInto(input: Uint8Array, out: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const z = createInflateRaw({ chunkSize: Math.max(out.length, 1024) });
    let n = 0;
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      z.destroy();
      if (err) reject(err);
      else resolve(n);
    };
    z.on('data', (chunk: Buffer) => {
      const take = Math.min(chunk.length, out.length - n);
      out.set(chunk.subarray(0, take), n);
      n += take;
      if (n === out.length) settle();
    });
    z.on('end', () => settle());
    z.on('error', (err) => settle(err));
    z.end(input);
  });
}

interface FrameInfo {
  readonly end: number;
  readonly contentSize: number | undefined;
  readonly window: number;
  readonly skippable: boolean;
}

function rd(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[p + i] ?? 0);
  return v;
}

/** Walks one zstd frame (header and block headers) to find where it ends. */
function frameAt(b: Uint8Array, p: number): FrameInfo {
  const magic = rd(b, p, 4);
  if (magic >>> 4 === 0x184d2a5) return { end: p + 8 + rd(b, p + 4, 4), contentSize: 0, window: 0, skippable: true };
  if (magic !== 0xfd2fb528) throw new Error('bad zstd frame magic');
  const fhd = b[p + 4] ?? 0;
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  let q = p + 5;
  let window = 0;
  if (!single) {
    const wd = b[q++] ?? 0;
    const base = 2 ** (10 + (wd >> 3));
    window = base + (base / 8) * (wd & 7);
  }
  q += [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = fcsFlag === 0 ? single : 2 ** fcsFlag;
  let contentSize: number | undefined;
  if (fcsBytes > 0) contentSize = rd(b, q, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
  q += fcsBytes;
  for (;;) {
    if (q + 3 > b.length) throw new Error('truncated zstd frame');
    const h = rd(b, q, 3);
    const type = (h >> 1) & 3;
    if (type === 3) throw new Error('reserved zstd block type');
    q += 3 + (type === 1 ? 1 : h >>> 3);
    if (h & 1) break;
  }
  if ((fhd >> 2) & 1) q += 4;
  if (q > b.length) throw new Error('truncated zstd frame');
  return { end: q, contentSize, window: single ? (contentSize ?? 0) : window, skippable: false };
}

/** Decodes zstd frames until `out` is full (QEMU ignores what follows). */
function decodeZstd(input: Uint8Array, out: Uint8Array): void {
  let pos = 0;
  let outPos = 0;
  while (outPos < out.length) {
    if (pos >= input.length) throw new Error('zstd data ended before a full cluster');
    const f = frameAt(input, pos);
    const frame = input.subarray(pos, f.end);
    pos = f.end;
    if (f.skippable) continue;
    outPos = f.contentSize === undefined ? decodeUnsizedFrame(frame, f.window, out, outPos) : decodeSizedFrame(frame, f.contentSize, out, outPos);
  }
}

/**
 * A frame that declares its size decodes into a buffer of exactly that size.
 * fzstd is not handed `out`: it compares its buffer argument with `== 1`,
 * which turns a typed array into a string of every byte (a 64 KiB cluster
 * cost ~4 ms); the one copy below costs microseconds.
 */
function decodeSizedFrame(frame: Uint8Array, size: number, out: Uint8Array, outPos: number): number {
  if (size > out.length - outPos) throw new Error('zstd frame larger than a cluster');
  if (size === 0) return outPos;
  const res = zstdDecompress(frame);
  if (res.length !== size) throw new Error('zstd frame content size mismatch');
  out.set(res, outPos);
  return outPos + size;
}

/**
 * A frame without a content size can expand without limit (4 bytes of RLE
 * block per 128 KiB), so it is decoded block by block and stopped as soon as
 * it would overrun the cluster, as QEMU's streaming decoder does; memory
 * stays at the window (bounded) plus one block.
 */
function decodeUnsizedFrame(frame: Uint8Array, window: number, out: Uint8Array, outPos: number): number {
  if (window > MAX_ZSTD_WINDOW) throw new Error('zstd window too large');
  let at = outPos;
  const stream = new ZstdStream((block) => {
    if (block.length > out.length - at) throw new Error('zstd frame larger than a cluster');
    out.set(block, at);
    at += block.length;
  });
  stream.push(frame, true);
  return at;
}

/**
 * Compresses one cluster the way QEMU does; returns undefined when the
 * result would not be smaller than a cluster (the caller writes it
 * uncompressed).
 */
export async function compressCluster(type: number, data: Uint8Array): Promise<Uint8Array | undefined> {
  if (type === COMPRESSION_ZSTD) {
    // One frame per cluster at zstd's default level, as QEMU writes it.
    const zstd = await zstdEncoder();
    const out = zstd.compress(data, ZSTD_DEFAULT_LEVEL);
    return out.length >= data.length ? undefined : out;
  }
  const out = await deflateRaw(data, { windowBits: 12, memLevel: 9 });
  if (out.length >= data.length) return undefined;
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
