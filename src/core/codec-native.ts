/**
 * Compressed units decoded and encoded by the native module on libuv's
 * thread pool (native/codec.c): what qemu-img does on its own thread pool,
 * without a worker isolate per core, a message per batch or a copy per unit.
 * The semantics are codec-kernels.ts's, which stays the portable path (and
 * the path for anything the native module cannot take).
 */
import type { CodecName, CodecResult, CodecTask, DecodeTask } from './codec-kernels.js';
import { nativeAddon } from './native-addon.js';

interface NativeCodecOps {
  decodeBatch?(codec: number, input: Uint8Array, pieces: Float64Array, unit: number, out: Uint8Array): Promise<{ produced: number[]; failedIndex?: number; message?: string }>;
  encodeUnit?(codec: number, data: Uint8Array): Promise<Uint8Array>;
  encodeUnits?(codec: number, data: Uint8Array, unit: number, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<number>;
  zstdAvailable?(): boolean;
}

const ops = nativeAddon as NativeCodecOps | undefined;
const CODEC_IDS: Readonly<Record<CodecName, number>> = { 'deflate-raw': 0, zlib: 1, zstd: 2 };
/** The native module's units are capped like its C side (MAX_UNIT). */
const MAX_UNIT = 64 * 1024 * 1024;

let zstd: boolean | undefined;

/**
 * True when the native module can run `task` (VDISK_CODEC_NATIVE=0 turns it
 * off, to measure or test the portable path).
 */
export function nativeCodecCan(task: CodecTask): boolean {
  if (!ops?.decodeBatch || !ops.encodeUnit || process.env['VDISK_CODEC_NATIVE'] === '0') return false;
  if (task.op === 'decode' && (task.unit <= 0 || task.unit > MAX_UNIT)) return false;
  if (task.codec !== 'zstd') return true;
  zstd ??= ops.zstdAvailable?.() === true;
  return zstd;
}

/** Runs `task` on the native module (check {@link nativeCodecCan} first). */
export async function runNativeCodec(task: CodecTask): Promise<CodecResult> {
  if (!ops?.decodeBatch || !ops.encodeUnit) throw new Error('the native codecs are not available');
  if (task.op === 'encode') return { out: await ops.encodeUnit(CODEC_IDS[task.codec], task.data) };
  return decode(ops.decodeBatch.bind(ops), task);
}

/**
 * Input bytes per native request of {@link runNativeEncodeUnits}: small
 * enough that one run spreads over every pool thread (a run the ordered
 * writer waits for must not compress on one core while the others idle),
 * large enough that a request costs little next to its work.
 */
const ENCODE_REQUEST_BYTES = 256 * 1024;

/**
 * Compresses every unit of `data` (see {@link encodeUnitsOnPool}) in a few
 * native requests that run in parallel, each packing into its own part of
 * `out`; the parts are then moved together. Undefined when the native
 * module cannot.
 */
export async function runNativeEncodeUnits(codec: CodecName, data: Uint8Array, unit: number, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<number | undefined> {
  const encode = ops?.encodeUnits;
  if (!encode || unit > MAX_UNIT || !nativeCodecCan({ op: 'encode', codec, data })) return undefined;
  const per = Math.max(1, Math.floor(ENCODE_REQUEST_BYTES / unit)) * unit;
  const parts: Promise<number>[] = [];
  for (let at = 0; at < data.length; at += per) {
    const end = Math.min(data.length, at + per);
    parts.push(encode.call(ops, CODEC_IDS[codec], data.subarray(at, end), unit, skipZeros, out.subarray(at, end), sizes.subarray(at / unit, end / unit)));
  }
  const packed = await Promise.all(parts);
  let pos = 0;
  for (const [i, n] of packed.entries()) {
    if (pos !== i * per) out.copyWithin(pos, i * per, i * per + n);
    pos += n;
  }
  return pos;
}

async function decode(run: NonNullable<NativeCodecOps['decodeBatch']>, t: DecodeTask): Promise<CodecResult> {
  const out = t.out ?? new Uint8Array(t.outLength);
  const pieces = new Float64Array(t.pieces.length * 5);
  t.pieces.forEach((p, i) => pieces.set([p.at, p.length, p.outAt, p.from, p.count], i * 5));
  const r = await run(CODEC_IDS[t.codec], t.input, pieces, t.unit, out);
  const failed = r.failedIndex === undefined ? undefined : { index: r.failedIndex, message: r.message ?? 'decode failed' };
  return { out: t.out ? undefined : out, produced: r.produced, failed };
}
