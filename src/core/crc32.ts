/**
 * CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as zip and gzip record
 * it: zlib's own (Node 20.15 and later) when there is one, else table-driven.
 */
import { zlib } from './lazy-builtins.js';

let table: Uint32Array | undefined;

/** Continues a CRC-32 over `data` (start with 0): `crc32(b, crc32(a, 0))` equals `crc32(a ++ b, 0)`. */
export function crc32(data: Uint8Array, value: number): number {
  const nativeCrc = (zlib() as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (nativeCrc) return nativeCrc(data, value);
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~value >>> 0;
  for (const byte of data) c = (table[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
