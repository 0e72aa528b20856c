/**
 * The parent locator metadata item (MS-VHDX 2.6.2.6): a locator type GUID,
 * a key/value count, and 12-byte entries {key offset, value offset, key
 * length, value length} pointing at UTF-16LE strings inside the item.
 * Keys of a VHDX parent: parent_linkage, parent_linkage2, relative_path,
 * volume_path, absolute_win32_path.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { GUID_PARENT_TYPE_VHDX, guidAt } from './constants.js';

/** The decoded locator: every key and value. */
export type ParentLocator = ReadonlyMap<string, string>;

/** Decodes a parent locator item. `itemOffset` is its file offset (for messages). */
export function parseParentLocator(buf: Uint8Array, itemOffset: number): ParentLocator {
  if (buf.length < 20) throw new CorruptImageError('VHDX parent locator is truncated', { offset: itemOffset });
  if (!guidAt(buf, 0, GUID_PARENT_TYPE_VHDX)) throw new UnsupportedError('VHDX parent locator names a parent type other than VHDX', { offset: itemOffset });
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = v.getUint16(18, true);
  if (20 + count * 12 > buf.length) throw new CorruptImageError(`VHDX parent locator has ${count} entries that do not fit its ${buf.length} bytes`, { offset: itemOffset + 18 });
  const out = new Map<string, string>();
  const str = (off: number, len: number, what: string, at: number): string => {
    if (off + len > buf.length || len % 2 !== 0) throw new CorruptImageError(`VHDX parent locator entry ${what} lies outside the locator`, { offset: itemOffset + at });
    return Buffer.from(buf.buffer, buf.byteOffset + off, len).toString('utf16le');
  };
  for (let i = 0; i < count; i++) {
    const at = 20 + i * 12;
    const key = str(v.getUint32(at, true), v.getUint16(at + 8, true), 'key', at);
    const value = str(v.getUint32(at + 4, true), v.getUint16(at + 10, true), 'value', at);
    out.set(key, value);
  }
  return out;
}

/**
 * The parent file name vdisk follows: `relative_path` first, then
 * `absolute_win32_path`, with Windows separators turned into `/`.
 * (`volume_path` names a Windows volume GUID and cannot be followed.)
 */
export function parentFilename(locator: ParentLocator): string | undefined {
  const name = locator.get('relative_path') ?? locator.get('absolute_win32_path');
  if (name === undefined || name === '') return undefined;
  let path = name.replaceAll('\\', '/');
  if (path.startsWith('./')) path = path.slice(2);
  return path;
}

/** Encodes a VHDX parent locator from key/value pairs (keys in the order given). */
export function serializeParentLocator(entries: readonly (readonly [string, string])[]): Uint8Array {
  const strings = entries.map(([k, val]) => [Buffer.from(k, 'utf16le'), Buffer.from(val, 'utf16le')] as const);
  const head = 20 + entries.length * 12;
  const total = head + strings.reduce((n, [k, val]) => n + k.length + val.length, 0);
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  buf.set(GUID_PARENT_TYPE_VHDX, 0);
  v.setUint16(18, entries.length, true);
  let at = head;
  strings.forEach(([k, val], i) => {
    const e = 20 + i * 12;
    v.setUint32(e, at, true);
    buf.set(k, at);
    at += k.length;
    v.setUint32(e + 4, at, true);
    buf.set(val, at);
    at += val.length;
    v.setUint16(e + 8, k.length, true);
    v.setUint16(e + 10, val.length, true);
  });
  return buf;
}
