/**
 * Where a dmg keeps its mish blocks: a classic resource fork (each resource
 * a u32 length and its bytes) or, in newer images, base64 `<data>` elements
 * of the XML property list. Read as QEMU's dmg_read_resource_fork and
 * dmg_read_plist_xml do, with every length bounded before it is allocated.
 */
import { UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { readHost } from '../read-only/common.js';
import { dmgInvalid } from './koly.js';
import { type MishContext, parseMish } from './mish.js';

async function u32(store: ByteStore, offset: number): Promise<number> {
  return new DataView((await readHost(store, offset, 4)).buffer).getUint32(0, false);
}

/** The resources of the fork at `[begin, begin+length)`. */
export async function readResourceFork(store: ByteStore, filename: string, begin: number, length: number, ctx: MishContext): Promise<void> {
  const dataOffset = await u32(store, begin);
  if (dataOffset > length) throw dmgInvalid(filename, begin);
  const dataLength = await u32(store, begin + 8);
  // qemu adds the two u32 fields in 32 bits
  if (dataLength === 0 || ((dataOffset + dataLength) >>> 0) > length) throw dmgInvalid(filename, begin + 8);
  let offset = begin + dataOffset;
  const end = offset + dataLength;
  for (let n = 0; offset < end; n++) {
    if (n >= LIMITS.dmgMaxResources) throw new UnsupportedError(`dmg resource fork has more than ${LIMITS.dmgMaxResources} resources, the most vdisk reads`, { offset });
    const count = await u32(store, offset);
    if (count === 0 || count > end - offset) throw dmgInvalid(filename, offset);
    if (count > LIMITS.dmgMaxResourceBytes) throw new UnsupportedError(`dmg resource of ${count} bytes is larger than ${LIMITS.dmgMaxResourceBytes}, the most vdisk reads`, { offset });
    offset += 4;
    parseMish(await readHost(store, offset, count), ctx);
    offset += count;
  }
}

/** glib's base64 ranks: -1 for characters it skips; '=' counts as a zero digit. */
const RANK = (() => {
  const r = new Int8Array(256).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) r[alphabet.charCodeAt(i)] = i;
  r[0x3d] = 0;
  return r;
})();

/**
 * Decodes base64 as g_base64_decode does: other characters are skipped, a
 * trailing partial quantum is dropped, and '=' in a quantum's last places
 * drops the bytes it stands for.
 */
function glibBase64(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(Math.floor(((to - from) * 3) / 4) + 3);
  let n = 0;
  let v = 0;
  let i = 0;
  let last0 = 0;
  let last1 = 0;
  for (let p = from; p < to; p++) {
    const c = bytes[p] as number;
    const rank = RANK[c] as number;
    if (rank < 0) continue;
    last1 = last0;
    last0 = c;
    v = ((v << 6) | rank) & 0xffffff;
    if (++i === 4) {
      out[n++] = v >>> 16;
      if (last1 !== 0x3d) out[n++] = (v >>> 8) & 0xff;
      if (last0 !== 0x3d) out[n++] = v & 0xff;
      i = 0;
    }
  }
  return out.subarray(0, n);
}

function indexOf(hay: Uint8Array, needle: string, from: number, end: number): number {
  const first = needle.charCodeAt(0);
  outer: for (let i = hay.indexOf(first, from); i >= 0 && i + needle.length <= end; i = hay.indexOf(first, i + 1)) {
    for (let k = 1; k < needle.length; k++) if (hay[i + k] !== needle.charCodeAt(k)) continue outer;
    return i;
  }
  return -1;
}

/** The mish blocks in the `<data>` elements of the XML property list at `[begin, begin+length)`. */
export async function readPlistXml(store: ByteStore, filename: string, begin: number, length: number, ctx: MishContext): Promise<void> {
  if (length === 0 || length > LIMITS.dmgMaxXmlBytes) throw dmgInvalid(filename, begin);
  const xml = await readHost(store, begin, length);
  // qemu searches a C string: it ends at the first NUL
  const nul = xml.indexOf(0);
  const end = nul < 0 ? xml.length : nul;
  for (let at = indexOf(xml, '<data>', 0, end); at >= 0; ) {
    const from = at + 6;
    const close = indexOf(xml, '</data>', from, end);
    if (close < 0) throw dmgInvalid(filename, begin + from);
    parseMish(glibBase64(xml, from, close), ctx);
    // qemu cut the string at '<' of the closing tag and goes on from the byte after it
    at = indexOf(xml, '<data>', close + 1, end);
  }
}
