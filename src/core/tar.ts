/**
 * Tar headers (POSIX ustar and GNU "oldgnu"), pure: encode one 512-byte
 * header, parse one back. Enough for the archives clouds take (an OVA, a
 * GCE `disk.raw` tarball): regular files, names under 100 bytes, sizes past
 * the 8 GiB octal limit in GNU's base-256 form (what GNU tar writes too).
 */
import { InvalidArgumentError } from './errors.js';

/** Bytes of a tar block: headers and every entry's data are padded to it. */
export const TAR_BLOCK = 512;

/** `ustar` (POSIX.1-1988, what OVF names) or `oldgnu` (GNU tar's default, what GCE's docs use). */
export type TarFormat = 'ustar' | 'oldgnu';

/** One entry as its header gives it. */
export interface TarHeader {
  /** The entry's path in the archive. */
  readonly name: string;
  /** Bytes of its data. */
  readonly size: number;
  /** `'0'` (or NUL) for a regular file. */
  readonly type: string;
  /** The magic found: ustar, oldgnu, or v7 (none). */
  readonly format: TarFormat | 'v7';
}

const OCTAL_SIZE_MAX = 8 ** 11 - 1;
const enc = new TextEncoder();

function putString(h: Uint8Array, at: number, len: number, s: string): void {
  const bytes = enc.encode(s);
  if (bytes.length > len) throw new InvalidArgumentError(`Tar entry name '${s}' is longer than ${len} bytes`);
  h.set(bytes, at);
}

/** `width - 1` octal digits and a NUL, as tar's numeric fields are written. */
function putOctal(h: Uint8Array, at: number, width: number, n: number): void {
  putString(h, at, width, n.toString(8).padStart(width - 1, '0') + '\0');
}

/** Sizes past the octal field: GNU's base-256 (top bit set, big-endian binary). */
function putBase256(h: Uint8Array, at: number, width: number, n: number): void {
  let v = BigInt(n);
  for (let i = at + width - 1; i > at; i--, v >>= 8n) h[i] = Number(v & 0xffn);
  h[at] = 0x80;
}

function checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

/** The header of a regular file `name` of `size` bytes (mode 0644, owner 0, time `mtime` seconds). */
export function tarHeader(name: string, size: number, format: TarFormat, mtime = 0): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`Invalid tar entry size ${size}`);
  const h = new Uint8Array(TAR_BLOCK);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  if (size <= OCTAL_SIZE_MAX) putOctal(h, 124, 12, size);
  else putBase256(h, 124, 12, size);
  putOctal(h, 136, 12, mtime);
  h[156] = 0x30; // '0': regular file
  // ustar: "ustar\0" + "00"; oldgnu: "ustar " + " \0".
  putString(h, 257, 8, format === 'ustar' ? 'ustar\x0000' : 'ustar  \0');
  putString(h, 265, 32, 'root');
  putString(h, 297, 32, 'root');
  putString(h, 148, 8, checksum(h).toString(8).padStart(6, '0') + '\0 ');
  return h;
}

function getString(h: Uint8Array, at: number, len: number): string {
  const field = h.subarray(at, at + len);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
}

function getNumber(h: Uint8Array, at: number, len: number): number | undefined {
  if (h[at]! & 0x80) {
    let v = 0n;
    for (let i = at + 1; i < at + len; i++) v = (v << 8n) | BigInt(h[i]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  }
  const text = getString(h, at, len).trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : text === '' ? 0 : undefined;
}

/** True for a block of zeros (the end of an archive). */
export function isZeroBlock(h: Uint8Array): boolean {
  return h.every((b) => b === 0);
}

/** Parses a header; undefined when `h` is not one (bad checksum or numbers). */
export function parseTarHeader(h: Uint8Array): TarHeader | undefined {
  if (h.length < TAR_BLOCK || isZeroBlock(h.subarray(0, TAR_BLOCK))) return undefined;
  const size = getNumber(h, 124, 12);
  if (size === undefined || getNumber(h, 148, 8) !== checksum(h)) return undefined;
  const magic = getString(h, 257, 8);
  const format = h[263] === 0x30 && magic === 'ustar' ? 'ustar' : magic === 'ustar  ' ? 'oldgnu' : 'v7';
  const prefix = format === 'ustar' ? getString(h, 345, 155) : '';
  const name = getString(h, 0, 100);
  return { name: prefix ? `${prefix}/${name}` : name, size, type: String.fromCharCode(h[156] || 0x30), format };
}

/** Bytes an entry of `size` bytes takes in the archive, its header included. */
export function tarEntrySpan(size: number): number {
  return TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** The end of an archive: two zero blocks. */
export const TAR_END = 2 * TAR_BLOCK;
