/**
 * The one entry of a zip-wrapped image (an appliance `.zip` holding one
 * disk), found through the central directory as unzip finds it, so the
 * sizes, CRC and flags come from the authoritative record rather than from
 * streaming local headers. Every field is bounded by the file before use;
 * encrypted entries and compression methods vdisk cannot decode are refused
 * with typed errors before any byte is inflated.
 */
import { CorruptImageError, UnsupportedError } from '../core/errors.js';
import type { ByteStore } from './byte-store.js';

/** What a zip-wrapped image's entry is. */
export interface ZipEntry {
  /** The entry's name inside the archive. */
  readonly name: string;
  /** 0 (stored) or 8 (deflate): the only methods that get this far. */
  readonly method: 0 | 8;
  /** CRC-32 of the inflated bytes, as the central directory records it. */
  readonly crc: number;
  /** Bytes of compressed data. */
  readonly compressedSize: number;
  /** Bytes once inflated. */
  readonly size: number;
  /** Where the compressed data starts in the archive. */
  readonly dataOffset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_BYTES = 22;
const MAX_COMMENT = 0xffff;
/** Largest central directory read: an image archive has one or a few entries. */
const MAX_DIRECTORY_BYTES = 4 * 1024 * 1024;

/** Compression methods by number, for the refusal message. */
const METHOD_NAMES: Readonly<Record<number, string>> = { 9: 'deflate64', 12: 'bzip2', 14: 'lzma', 93: 'zstd', 95: 'xz', 98: 'ppmd', 99: 'AES encryption' };

async function readAt(store: ByteStore, offset: number, length: number): Promise<DataView> {
  const b = new Uint8Array(length);
  await store.read(offset, b);
  return new DataView(b.buffer);
}

function u64(view: DataView, at: number, file: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`'${file}': zip64 field above 2^53`, { file });
  return Number(v);
}

/** Where the central directory is: the end record, or its zip64 form when a field is saturated. */
async function findDirectory(store: ByteStore, size: number, file: string): Promise<{ offset: number; length: number }> {
  const tailLen = Math.min(size, EOCD_BYTES + MAX_COMMENT);
  const tail = await readAt(store, size - tailLen, tailLen);
  let at = -1;
  for (let i = tailLen - EOCD_BYTES; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD_SIG && i + EOCD_BYTES + tail.getUint16(i + 20, true) <= tailLen) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new CorruptImageError(`'${file}' is not a complete zip archive (no end of central directory)`, { file });
  let length = tail.getUint32(at + 12, true);
  let offset = tail.getUint32(at + 16, true);
  if ((length === 0xffffffff || offset === 0xffffffff) && at >= 20 && tail.getUint32(at - 20, true) === EOCD64_LOCATOR_SIG) {
    const recordAt = u64(tail, at - 20 + 8, file);
    if (recordAt + 56 > size) throw new CorruptImageError(`'${file}': zip64 end record lies past the end of the file`, { file });
    const rec = await readAt(store, recordAt, 56);
    if (rec.getUint32(0, true) !== EOCD64_SIG) throw new CorruptImageError(`'${file}': bad zip64 end record`, { file });
    length = u64(rec, 40, file);
    offset = u64(rec, 48, file);
  }
  if (offset + length > size) throw new CorruptImageError(`'${file}': zip central directory lies past the end of the file`, { file });
  if (length > MAX_DIRECTORY_BYTES) throw new UnsupportedError(`'${file}': zip central directory of ${length} bytes is larger than vdisk reads`, { file });
  return { offset, length };
}

interface DirectoryEntry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

/** Fills the fields a zip64 extra block carries for the 32-bit fields that are saturated. */
function zip64Fields(extra: DataView, sizes: number[], file: string): void {
  for (let p = 0; p + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(p, true);
    const len = extra.getUint16(p + 2, true);
    if (id === 0x0001) {
      let q = p + 4;
      for (let i = 0; i < sizes.length && q + 8 <= p + 4 + len && q + 8 <= extra.byteLength; i++) {
        if (sizes[i] !== 0xffffffff) continue;
        sizes[i] = u64(extra, q, file);
        q += 8;
      }
      return;
    }
    p += 4 + len;
  }
}

function parseDirectory(dir: DataView, file: string): DirectoryEntry[] {
  const out: DirectoryEntry[] = [];
  const bytes = new Uint8Array(dir.buffer, dir.byteOffset, dir.byteLength);
  for (let p = 0; p + 46 <= dir.byteLength; ) {
    if (dir.getUint32(p, true) !== CDH_SIG) break;
    const flags = dir.getUint16(p + 8, true);
    const nameLen = dir.getUint16(p + 28, true);
    const extraLen = dir.getUint16(p + 30, true);
    const commentLen = dir.getUint16(p + 32, true);
    if (p + 46 + nameLen + extraLen > dir.byteLength) throw new CorruptImageError(`'${file}': truncated zip central directory`, { file });
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLen);
    const name = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(nameBytes);
    const fields = [dir.getUint32(p + 24, true), dir.getUint32(p + 20, true), dir.getUint32(p + 42, true)];
    zip64Fields(new DataView(dir.buffer, dir.byteOffset + p + 46 + nameLen, extraLen), fields, file);
    const [size, compressedSize, localOffset] = fields as [number, number, number];
    out.push({ name, flags, method: dir.getUint16(p + 10, true), crc: dir.getUint32(p + 16, true), compressedSize, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Refuses what vdisk cannot inflate faithfully: encrypted entries and methods other than stored and deflate. */
function checkDecodable(e: DirectoryEntry, file: string): asserts e is DirectoryEntry & { method: 0 | 8 } {
  if (e.flags & 0x41 || e.method === 99) {
    throw new UnsupportedError(`'${file}': the zip entry '${e.name}' is encrypted; vdisk does not decrypt archives`, { file, data: { entry: e.name } });
  }
  if (e.method !== 0 && e.method !== 8) {
    const what = METHOD_NAMES[e.method] ?? 'an unknown method';
    throw new UnsupportedError(`'${file}': the zip entry '${e.name}' is compressed with ${what} (method ${e.method}); vdisk reads stored and deflate entries only`, {
      file,
      data: { entry: e.name, method: e.method },
    });
  }
  if (e.method === 0 && e.compressedSize !== e.size) throw new CorruptImageError(`'${file}': stored zip entry '${e.name}' has two different sizes`, { file });
}

/**
 * The single file entry of the archive in `store` (directory entries are
 * skipped), checked to be decodable and to lie inside the file.
 *
 * @throws {CorruptImageError} ECORRUPT for a damaged archive, {@link UnsupportedError} EUNSUPPORTED for
 *   encrypted entries, other compression methods and archives holding more than one file
 */
export async function readZipEntry(store: ByteStore, file: string): Promise<ZipEntry> {
  const size = await store.size();
  if (size < EOCD_BYTES) throw new CorruptImageError(`'${file}' is not a complete zip archive (no end of central directory)`, { file });
  const where = await findDirectory(store, size, file);
  const entries = parseDirectory(await readAt(store, where.offset, where.length), file).filter((e) => !e.name.endsWith('/'));
  if (entries.length === 0) throw new CorruptImageError(`'${file}' holds no file`, { file });
  if (entries.length > 1) throw new UnsupportedError(`'${file}' holds more than one file; extract the image first`, { file });
  const e = entries[0] as DirectoryEntry;
  checkDecodable(e, file);
  if (e.localOffset + 30 > size) throw new CorruptImageError(`'${file}': zip entry '${e.name}' lies past the end of the file`, { file });
  const local = await readAt(store, e.localOffset, 30);
  if (local.getUint32(0, true) !== LOCAL_SIG) throw new CorruptImageError(`'${file}': bad local header of zip entry '${e.name}'`, { file });
  const dataOffset = e.localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
  if (dataOffset + e.compressedSize > size) throw new CorruptImageError(`'${file}': zip entry '${e.name}' lies past the end of the file`, { file });
  return { name: e.name, method: e.method, crc: e.crc, compressedSize: e.compressedSize, size: e.size, dataOffset };
}
