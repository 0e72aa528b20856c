/**
 * Wrapped streams (`disk.img.gz`, `disk.raw.tar.gz`, an OVA, a `.zip`,
 * `.zst`, `.bz2`) unwrapped as they flow: each layer is recognised by its first
 * bytes and decoded on the fly into the next, until the bytes are the
 * image itself. Nothing is kept but the decoders' windows (zstd: one frame
 * at a time); what the layers inflate to is capped as the ingest policy
 * caps an inflated upload.
 */
import { Bzip2Error, decodeBzip2Stream } from '../core/bzip2.js';
import { CorruptImageError, PolicyError, UnsupportedError, VdiskError } from '../core/errors.js';
import { decodeZstdFrame } from '../core/codec-kernels.js';
import { stream as nodeStream, zlib } from '../core/lazy-builtins.js';
import { isTar, tarEntry, zipEntry } from './archive-stream.js';
import { StreamSource } from './forward-source.js';

/** A wrapper a stream can have. */
export type StreamWrapper = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'zip' | 'tar';

/** Bytes of the head the wrappers are recognised by (tar's magic sits at 257). */
export const WRAPPER_HEAD_BYTES = 512;
/** Most wrappers around one image (`tar.gz` is two). */
const MAX_LAYERS = 4;
/** Block size bound of zstd (ZSTD_BLOCKSIZE_MAX): what one block decodes to at most. */
const ZSTD_BLOCK_MAX = 128 * 1024;

/** The wrapper `head` shows, if any. */
export function detectStreamWrapper(head: Uint8Array): StreamWrapper | undefined {
  const b = (i: number): number => head[i] ?? -1;
  if (b(0) === 0x1f && b(1) === 0x8b && b(2) === 0x08) return 'gzip';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68 && b(3) >= 0x31 && b(3) <= 0x39) return 'bzip2';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a && b(5) === 0x00) return 'xz';
  if (b(0) === 0x50 && b(1) === 0x4b && b(2) === 0x03 && b(3) === 0x04) return 'zip';
  if (isTar(head)) return 'tar';
  return undefined;
}

/** How wrapped streams are unwrapped. */
export interface UnwrapStreamOptions {
  /** Most bytes the wrapped image may inflate to. */
  readonly maxSize: number;
  /** Most bytes of one zstd frame (compressed or decoded) held at once. */
  readonly frameLimit: number;
  readonly signal?: AbortSignal | undefined;
}

/** What unwrapping found: the image's source and the layers peeled off it. */
export interface UnwrappedStream {
  readonly source: StreamSource;
  readonly wrappers: readonly StreamWrapper[];
  /** The archive entry taken (tar, zip). */
  readonly entry?: string | undefined;
}

function decodeError(err: unknown, name: string, what: string): unknown {
  if (err instanceof VdiskError) return err;
  const code = (err as { code?: unknown }).code;
  if (err instanceof Error && typeof code === 'string' && code.startsWith('Z_')) {
    return new CorruptImageError(`Could not decompress '${name}' (${what}): ${err.message}`, { file: name, cause: err });
  }
  return err;
}

async function* gunzip(source: StreamSource): AsyncGenerator<Uint8Array> {
  const s = nodeStream();
  const out = s.pipeline(s.Readable.from(source.rest()), zlib().createGunzip({ chunkSize: 256 * 1024 }), () => undefined);
  try {
    yield* out as AsyncIterable<Uint8Array>;
  } catch (err) {
    throw decodeError(err, source.name, 'gzip');
  }
}

/** One zstd frame's bytes, walked by its block headers (the format records no frame length). */
async function zstdFrame(source: StreamSource, limit: number): Promise<{ bytes: Uint8Array; content: number } | 'skip'> {
  const at = source.position;
  const parts: Uint8Array[] = [];
  let held = 0;
  const take = async (n: number): Promise<Uint8Array> => {
    held += n;
    if (held > limit) throw new PolicyError(`'${source.name}': the zstd frame at offset ${at} is larger than ${limit} bytes, the most held at once (compress with smaller frames, e.g. pzstd)`, { file: source.name, offset: at, reason: 'spill-limit' });
    // A copy of its own (a stream's chunks are Buffers, whose slice() is a view).
    const b = new Uint8Array(await source.read(n));
    parts.push(b);
    return b;
  };
  const head = await take(5);
  const magic = new DataView(head.buffer).getUint32(0, true);
  if (magic >>> 4 === 0x184d2a5) {
    const rest = await source.read(3);
    await source.skip(((head[4] as number) | ((rest[0] as number) << 8) | ((rest[1] as number) << 16) | ((rest[2] as number) << 24)) >>> 0);
    return 'skip';
  }
  if (magic !== 0xfd2fb528) throw new CorruptImageError(`'${source.name}': bad zstd frame magic at offset ${at}`, { file: source.name, offset: at });
  const fhd = head[4] as number;
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const fcsBytes = fcsFlag === 0 ? single : 2 ** fcsFlag;
  await take((single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + fcsBytes);
  let blocks = 0;
  for (;;) {
    const h = await take(3);
    const v = (h[0] as number) | ((h[1] as number) << 8) | ((h[2] as number) << 16);
    const type = (v >> 1) & 3;
    if (type === 3) throw new CorruptImageError(`'${source.name}': reserved zstd block type in the frame at offset ${at}`, { file: source.name, offset: at });
    await take(type === 1 ? 1 : v >>> 3);
    blocks++;
    if (v & 1) break;
  }
  if ((fhd >> 2) & 1) await take(4);
  const bytes = new Uint8Array(held);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { bytes, content: Math.min(blocks * ZSTD_BLOCK_MAX, limit) };
}

async function* unzstd(source: StreamSource, limit: number): AsyncGenerator<Uint8Array> {
  while ((await source.peek(1)).length > 0) {
    const at = source.position;
    const frame = await zstdFrame(source, limit);
    if (frame === 'skip') continue;
    try {
      yield await decodeZstdFrame(frame.bytes, frame.content);
    } catch (err) {
      throw new CorruptImageError(`Could not decompress '${source.name}' (zstd frame at offset ${at}): ${err instanceof Error ? err.message : String(err)}`, { file: source.name, offset: at, cause: err });
    }
  }
}

async function* bunzip2(source: StreamSource): AsyncGenerator<Uint8Array> {
  try {
    yield* decodeBzip2Stream(source.rest());
  } catch (err) {
    if (err instanceof Bzip2Error) throw new CorruptImageError(`Could not decompress '${source.name}' (bzip2): ${err.message}`, { file: source.name, cause: err });
    throw err;
  }
}

/** Counts the bytes out of the last layer and stops past the cap. */
async function* capped(chunks: AsyncIterable<Uint8Array>, max: number, name: string): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    if (n > max) {
      throw new PolicyError(`'${name}' inflates to more than ${max} bytes, the most allowed (maxInflatedSize)`, { file: name, reason: 'inflated-size-limit', data: { maxInflatedSize: max } });
    }
    yield c;
  }
}

/**
 * Peels the wrappers off `source` as it flows (none: `source` itself).
 *
 * @throws {UnsupportedError} for xz, which vdisk does not decode
 */
export async function unwrapStream(source: StreamSource, options: UnwrapStreamOptions): Promise<UnwrappedStream> {
  let current = source;
  const wrappers: StreamWrapper[] = [];
  let entry: string | undefined;
  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    const head = await current.peek(WRAPPER_HEAD_BYTES);
    const type = detectStreamWrapper(head);
    if (!type) break;
    if (type === 'xz') throw new UnsupportedError(`'${source.name}' is ${type}-compressed, which vdisk cannot read as a stream; decompress it first (e.g. ${type} -dc)`, { file: source.name });
    let chunks: AsyncIterable<Uint8Array>;
    if (type === 'gzip') chunks = gunzip(current);
    else if (type === 'bzip2') chunks = bunzip2(current);
    else if (type === 'zstd') chunks = unzstd(current, options.frameLimit);
    else {
      const found = type === 'tar' ? await tarEntry(current) : await zipEntry(current);
      entry = found.name;
      chunks = found.chunks;
    }
    wrappers.push(type);
    current = new StreamSource(capped(chunks, options.maxSize, source.name), { name: source.name, signal: options.signal });
  }
  return { source: current, wrappers, entry };
}
