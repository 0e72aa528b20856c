/**
 * The compression kernels behind compressed images: one unit (a qcow2
 * cluster, a VMDK grain) decoded or encoded at a time, synchronously, so
 * that a worker thread (codec-worker.ts) runs a whole batch without a
 * thread-pool hand-off per unit. The same functions run on the calling
 * thread when no worker is available. Output is always bounded by the
 * unit: nothing here allocates more than the unit plus its input.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { zlib } from './lazy-builtins.js';

/**
 * `deflate-raw`: qcow2's zlib (raw deflate, 4 KiB window); the unit must be
 * filled exactly, data past it is ignored. `zlib`: VMDK grains (zlib
 * header), at most a unit, shorter is allowed (the caller checks what it
 * needs). `zstd`: qcow2's zstd, frames until the unit is full.
 */
export type CodecName = 'deflate-raw' | 'zlib' | 'zstd';

/** One compressed unit of a decode task's input, and where its bytes go in the output. */
export interface DecodePiece {
  /** First byte of the compressed data in the task's input. */
  readonly at: number;
  /** Compressed bytes (an upper bound for qcow2: the data may end earlier). */
  readonly length: number;
  /** Where the copied bytes go in the output. */
  readonly outAt: number;
  /** First byte of the decoded unit to copy. */
  readonly from: number;
  /** Bytes of the decoded unit to copy. */
  readonly count: number;
}

/** Decode several units of one codec out of one input buffer. */
export interface DecodeTask {
  readonly op: 'decode';
  readonly codec: CodecName;
  readonly unit: number;
  readonly input: Uint8Array;
  readonly pieces: readonly DecodePiece[];
  /** The output when it is shared memory (written in place); otherwise one of `outLength` bytes is made and returned. */
  readonly out?: Uint8Array | undefined;
  readonly outLength: number;
}

/** What a decode task produced: bytes per piece (before zero fill), or the first piece that failed. */
export interface DecodeResult {
  readonly out?: Uint8Array | undefined;
  readonly produced: readonly number[];
  readonly failed?: { readonly index: number; readonly message: string } | undefined;
}

/** Encode one unit. */
export interface EncodeTask {
  readonly op: 'encode';
  readonly codec: CodecName;
  readonly data: Uint8Array;
}

export interface EncodeResult {
  readonly out: Uint8Array;
}

export type CodecTask = DecodeTask | EncodeTask;
export type CodecResult = DecodeResult | EncodeResult;

/** zstd's default level, which QEMU uses. */
const ZSTD_LEVEL = 3;
/** Largest zstd window accepted for frames without a content size. */
const MAX_ZSTD_WINDOW = 8 * 1024 * 1024;

/** The parts of the zstd WASM module used here (its typings say `any`). */
interface ZstdWasm {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _ZSTD_createDCtx(): number;
  _ZSTD_createCCtx(): number;
  _ZSTD_isError(code: number): number;
  _ZSTD_compressBound(n: number): number;
  _ZSTD_decompress_usingDict(dctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number): number;
  _ZSTD_compress_usingDict(cctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number, level: number): number;
}

/** One zstd instance per thread, with its contexts and two heap regions reused across units. */
interface Zstd {
  readonly m: ZstdWasm;
  readonly dctx: number;
  readonly cctx: number;
  src: { at: number; size: number };
  dst: { at: number; size: number };
}

let zstdReady: Promise<Zstd> | undefined;
let zstd: Zstd | undefined;

/**
 * Loads the zstd WASM module (Node 20's zlib has no zstd) once per thread.
 * The package is CommonJS; its `init()` compiles the .wasm shipped beside it.
 */
export function loadZstd(): Promise<void> {
  zstdReady ??= (async () => {
    const load = createRequire(import.meta.url);
    const main = load.resolve('@bokuweb/zstd-wasm');
    const pkg = load(main) as { init(): Promise<void> };
    await pkg.init();
    // The raw module (heap, contexts) is not among the package's exports; it sits beside its entry point.
    const m = (load(join(dirname(main), 'module.js')) as { Module: ZstdWasm }).Module;
    const z: Zstd = { m, dctx: m._ZSTD_createDCtx(), cctx: m._ZSTD_createCCtx(), src: { at: 0, size: 0 }, dst: { at: 0, size: 0 } };
    if (!z.dctx || !z.cctx) throw new Error('zstd: out of memory');
    zstd = z;
    return z;
  })();
  return zstdReady.then(() => undefined);
}

/** A heap region of at least `n` bytes (grown, never shrunk: units are bounded). */
function region(z: Zstd, which: 'src' | 'dst', n: number): number {
  const r = z[which];
  if (r.size >= n) return r.at;
  if (r.at) z.m._free(r.at);
  const at = z.m._malloc(n);
  if (!at) throw new Error('zstd: out of memory');
  z[which] = { at, size: n };
  return at;
}

function zstdLoaded(): Zstd {
  if (!zstd) throw new Error('zstd is not loaded');
  return zstd;
}

/** Runs one task on this thread (the worker's loop, or the fallback without workers). */
export async function runCodecTask(task: CodecTask): Promise<CodecResult> {
  if (task.codec === 'zstd') await loadZstd();
  return task.op === 'decode' ? decodeTask(task) : { out: encodeUnit(task.codec, task.data) };
}

async function decodeTask(t: DecodeTask): Promise<DecodeResult> {
  const out = t.out ?? new Uint8Array(t.outLength);
  const unit = new Uint8Array(t.unit);
  const produced: number[] = [];
  for (const [index, p] of t.pieces.entries()) {
    try {
      const n = await decodeUnit(t.codec, t.input.subarray(p.at, p.at + p.length), unit);
      produced.push(n);
    } catch (err) {
      return { out: t.out ? undefined : out, produced, failed: { index, message: err instanceof Error ? err.message : String(err) } };
    }
    out.set(unit.subarray(p.from, p.from + p.count), p.outAt);
  }
  return { out: t.out ? undefined : out, produced };
}

/**
 * Decodes one unit into `unit` (zero-filled past the decoded bytes);
 * returns the bytes decoded.
 */
export async function decodeUnit(codec: CodecName, input: Uint8Array, unit: Uint8Array): Promise<number> {
  if (codec === 'zstd') {
    decodeZstd(zstdLoaded(), input, unit);
    return unit.length;
  }
  if (codec === 'zlib') {
    // A grain inflates to at most a grain: one output chunk a byte larger catches a longer stream in one pass.
    const res = zlib().inflateSync(input, { chunkSize: unit.length + 1, maxOutputLength: unit.length });
    unit.set(res);
    unit.fill(0, res.length);
    return res.length;
  }
  let n: number;
  try {
    const res = zlib().inflateRawSync(input, { chunkSize: unit.length + 1, maxOutputLength: unit.length });
    unit.set(res);
    n = res.length;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') throw err;
    n = await inflateInto(input, unit); // a stream longer than a cluster: keep its first cluster
  }
  if (n !== unit.length) throw new Error('short output');
  return n;
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
    const z = zlib().createInflateRaw({ chunkSize: Math.max(out.length, 1024) });
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

/** Compresses one unit the way QEMU writes it (the caller decides whether the result is worth storing). */
export function encodeUnit(codec: CodecName, data: Uint8Array): Uint8Array {
  if (codec === 'deflate-raw') return asBytes(zlib().deflateRawSync(data, { windowBits: 12, memLevel: 9 }));
  if (codec === 'zlib') return asBytes(zlib().deflateSync(data));
  // One frame per unit at zstd's default level, as QEMU writes it.
  const z = zstdLoaded();
  const bound = z.m._ZSTD_compressBound(data.length);
  const src = region(z, 'src', data.length);
  const dst = region(z, 'dst', bound);
  z.m.HEAPU8.set(data, src);
  const r = z.m._ZSTD_compress_usingDict(z.cctx, dst, bound, src, data.length, 0, 0, ZSTD_LEVEL);
  if (z.m._ZSTD_isError(r)) throw new Error('zstd compression failed');
  return z.m.HEAPU8.slice(dst, dst + (r >>> 0));
}

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
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

/** Walks one zstd frame (header and block headers) to find where it ends: qcow2 stores no exact length. */
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
function decodeZstd(z: Zstd, input: Uint8Array, out: Uint8Array): void {
  let pos = 0;
  let outPos = 0;
  while (outPos < out.length) {
    if (pos >= input.length) throw new Error('zstd data ended before a full cluster');
    const f = frameAt(input, pos);
    const frame = input.subarray(pos, f.end);
    pos = f.end;
    if (f.skippable || f.contentSize === 0) continue;
    if (f.contentSize !== undefined && f.contentSize > out.length - outPos) throw new Error('zstd frame larger than a cluster');
    if (f.contentSize === undefined && f.window > MAX_ZSTD_WINDOW) throw new Error('zstd window too large');
    outPos += decodeFrame(z, frame, out, outPos, f.contentSize);
  }
}

/**
 * Decodes one frame into `out` at `outPos`, in one call with the output
 * capped at what is left of the unit: a frame that would expand past it
 * (declared or not: 4 bytes of RLE block make 128 KiB) stops with an error
 * as soon as it overruns, as QEMU's streaming decoder does.
 */
function decodeFrame(z: Zstd, frame: Uint8Array, out: Uint8Array, outPos: number, size: number | undefined): number {
  const cap = out.length - outPos;
  const src = region(z, 'src', frame.length);
  const dst = region(z, 'dst', cap);
  z.m.HEAPU8.set(frame, src);
  const r = z.m._ZSTD_decompress_usingDict(z.dctx, dst, cap, src, frame.length, 0, 0);
  if (z.m._ZSTD_isError(r)) throw new Error(size === undefined ? 'zstd frame larger than a cluster or damaged' : 'damaged zstd frame');
  const n = r >>> 0;
  if (size !== undefined && n !== size) throw new Error('zstd frame content size mismatch');
  out.set(z.m.HEAPU8.subarray(dst, dst + n), outPos);
  return n;
}

/**
 * Decodes one whole zstd frame of at most `cap` bytes of content (a
 * zstd-wrapped stream, frame by frame); returns its content.
 */
export async function decodeZstdFrame(frame: Uint8Array, cap: number): Promise<Uint8Array> {
  await loadZstd();
  const out = new Uint8Array(cap);
  const n = decodeFrame(zstdLoaded(), frame, out, 0, undefined);
  return out.subarray(0, n);
}
