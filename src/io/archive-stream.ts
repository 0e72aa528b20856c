/**
 * The disk inside an archive read forward: a tar (OVA, GCE's
 * `disk.raw.tar.gz`, container-disk layers) or a zip read through its
 * local headers. The first entry that is not a directory or an appliance's
 * descriptor (`.ovf`, `.mf`, `.cert`) is taken; its bytes are handed on
 * as they come and the rest of the archive is not read.
 */
import { CorruptImageError, UnsupportedError } from '../core/errors.js';
import { crc32 } from '../core/crc32.js';
import { stream as nodeStream, zlib } from '../core/lazy-builtins.js';
import type { StreamSource } from './forward-source.js';

const BLOCK = 512;
const CHUNK = 1024 * 1024;
/** Longest GNU long name or pax header kept (names and a few keys). */
const MAX_META = 1024 * 1024;
/** Appliance files beside the disk, never the disk itself. */
const NOT_A_DISK = /\.(ovf|mf|cert|nvram)$/i;

/** The disk entry found in an archive: its name and bytes. */
export interface ArchiveEntry {
  readonly name: string;
  /** Bytes of the entry once decoded, when the archive says. */
  readonly size: number | undefined;
  readonly chunks: AsyncIterable<Uint8Array>;
}

function text(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(b.subarray(0, nul < 0 ? b.length : nul)).toString('utf8');
}

/** A tar number field: octal text, or base-256 when the high bit is set. */
function tarNumber(b: Uint8Array, name: string, at: number): number {
  if (((b[0] as number) & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + (b[i] as number);
    if (!Number.isSafeInteger(n)) throw new CorruptImageError(`'${name}': tar size field at offset ${at} is above 2^53`, { file: name, offset: at });
    return n;
  }
  const s = text(b).trim();
  if (s !== '' && !/^[0-7]+$/.test(s)) throw new CorruptImageError(`'${name}': tar header at offset ${at} is damaged (size '${s}')`, { file: name, offset: at });
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  const stored = text(h.subarray(148, 156)).trim();
  return stored !== '' && parseInt(stored, 8) === sum;
}

/** True when `head` (at least 262 bytes) is a tar header. */
export function isTar(head: Uint8Array): boolean {
  return head.length >= 263 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar' && checksumOk(head.subarray(0, BLOCK));
}

async function* exactly(source: StreamSource, n: number): AsyncGenerator<Uint8Array> {
  for (let left = n; left > 0; ) {
    const c = await source.read(Math.min(CHUNK, left));
    left -= c.length;
    yield c;
  }
}

/** The pax keys of an extended header we use. */
function paxRecords(b: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const s = Buffer.from(b).toString('utf8');
  const re = /(\d+) ([^=]+)=([^\n]*)\n/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.set(m[2] as string, m[3] as string);
  return out;
}

/**
 * The disk entry of the tar on `source`.
 *
 * @throws {CorruptImageError} for a damaged header or an archive without a disk entry
 */
export async function tarEntry(source: StreamSource): Promise<ArchiveEntry> {
  const name = source.name;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  for (;;) {
    const at = source.position;
    const h = await source.read(BLOCK);
    if (h.every((x) => x === 0)) throw new CorruptImageError(`'${name}': the tar archive holds no disk image`, { file: name, offset: at });
    if (!checksumOk(h)) throw new CorruptImageError(`'${name}': tar header checksum mismatch at offset ${at}`, { file: name, offset: at });
    const type = String.fromCharCode(h[156] as number);
    const size = pax.has('size') ? Number(pax.get('size')) : tarNumber(h.subarray(124, 136), name, at + 124);
    if (!Number.isSafeInteger(size) || size < 0) throw new CorruptImageError(`'${name}': tar entry at offset ${at} has an invalid size`, { file: name, offset: at });
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const prefix = text(h.subarray(345, 500));
    const entry = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${text(h.subarray(0, 100))}` : text(h.subarray(0, 100)));
    if (type === 'L' || type === 'x') {
      if (size > MAX_META) throw new CorruptImageError(`'${name}': tar metadata entry at offset ${at} is ${size} bytes`, { file: name, offset: at });
      const data = (await source.read(padded)).subarray(0, size);
      if (type === 'L') longName = text(data);
      else pax = paxRecords(data);
      continue;
    }
    longName = undefined;
    pax = new Map();
    if ((type === '0' || type === '\0' || type === '7') && !NOT_A_DISK.test(entry) && !entry.endsWith('/')) {
      return { name: entry, size, chunks: tarData(source, size, padded) };
    }
    await source.skip(padded);
  }
}

async function* tarData(source: StreamSource, size: number, padded: number): AsyncGenerator<Uint8Array> {
  yield* exactly(source, size);
  await source.skip(padded - size);
}

const ZIP_LOCAL = 0x04034b50;

/** Inflates raw deflate data pulled from `source` until the deflate stream ends. */
async function* inflated(source: StreamSource, compressedSize: number | undefined): AsyncGenerator<Uint8Array> {
  const input = compressedSize === undefined ? source.rest() : exactly(source, compressedSize);
  const z = zlib().createInflateRaw({ chunkSize: 256 * 1024 });
  const s = nodeStream();
  const out = s.pipeline(s.Readable.from(input), z, () => undefined);
  yield* out as AsyncIterable<Uint8Array>;
}

/**
 * The first file entry of the zip on `source`, read through its local header.
 *
 * @throws {UnsupportedError} for encryption, methods other than stored and deflate, or a stored entry whose size
 *   only a trailing descriptor gives
 */
export async function zipEntry(source: StreamSource): Promise<ArchiveEntry> {
  const name = source.name;
  for (;;) {
    const at = source.position;
    const h = await source.read(30);
    const v = new DataView(h.buffer, h.byteOffset, 30);
    if (v.getUint32(0, true) !== ZIP_LOCAL) throw new CorruptImageError(`'${name}': the zip archive holds no disk image`, { file: name, offset: at });
    const flags = v.getUint16(6, true);
    const method = v.getUint16(8, true);
    let csize: number | undefined = v.getUint32(18, true);
    let usize: number | undefined = v.getUint32(22, true);
    const entry = Buffer.from(await source.read(v.getUint16(26, true))).toString('utf8');
    const extra = await source.read(v.getUint16(28, true));
    const zip64 = zip64Sizes(extra);
    if (csize === 0xffffffff && zip64) [usize, csize] = zip64;
    if ((flags & 8) !== 0) [csize, usize] = [undefined, undefined];
    if ((flags & 1) !== 0) throw new UnsupportedError(`'${name}': zip entry '${entry}' is encrypted`, { file: name, offset: at });
    if (method !== 0 && method !== 8) throw new UnsupportedError(`'${name}': zip entry '${entry}' uses compression method ${method}; only stored and deflate are supported`, { file: name, offset: at });
    if (method === 0 && csize === undefined) throw new UnsupportedError(`'${name}': zip entry '${entry}' is stored with its size after the data, which cannot be read forward`, { file: name, offset: at });
    const isDisk = !entry.endsWith('/') && !NOT_A_DISK.test(entry);
    if (!isDisk && csize !== undefined) {
      await source.skip(csize);
      continue;
    }
    if (!isDisk) throw new UnsupportedError(`'${name}': zip entry '${entry}' comes before the disk with its size after its data`, { file: name, offset: at });
    const data = method === 0 ? exactly(source, csize as number) : inflated(source, csize);
    // With a trailing descriptor (flag 3) the CRC and sizes come after the data, past what the inflater consumed.
    const chunks = usize === undefined ? data : checked(data, { name, entry, size: usize, crc: v.getUint32(14, true) });
    return { name: entry, size: usize, chunks };
  }
}

/** Passes an entry's data through, then checks its length and CRC-32 against the local header's. */
async function* checked(data: AsyncIterable<Uint8Array>, want: { name: string; entry: string; size: number; crc: number }): AsyncGenerator<Uint8Array> {
  let size = 0;
  let crc = 0;
  for await (const chunk of data) {
    size += chunk.length;
    crc = crc32(chunk, crc);
    yield chunk;
  }
  const { name, entry } = want;
  if (size !== want.size) throw new CorruptImageError(`'${name}': zip entry '${entry}' inflates to ${size} bytes, not the ${want.size} its header records`, { file: name });
  if (crc !== want.crc) throw new CorruptImageError(`'${name}': CRC mismatch in zip entry '${entry}' (the archive is damaged)`, { file: name });
}

/** [uncompressed, compressed] from a zip64 extra field. */
function zip64Sizes(extra: Uint8Array): [number, number] | undefined {
  const v = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let i = 0; i + 4 <= extra.length; ) {
    const id = v.getUint16(i, true);
    const len = v.getUint16(i + 2, true);
    if (id === 1 && len >= 16) return [Number(v.getBigUint64(i + 4, true)), Number(v.getBigUint64(i + 12, true))];
    i += 4 + len;
  }
  return undefined;
}
