/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX uses for
 * its headers, region tables and log entries. Table-driven, slicing by 8
 * (eight 256-entry tables), so checksumming a 1 MiB log stays cheap.
 */

const POLY = 0x82f63b78;

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1] as Uint32Array;
    const cur = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      cur[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
    tables.push(cur);
  }
  return tables;
}

type Tables = [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
/** Built on first use, not at import: every CLI start loads this module. */
let tables: Tables | undefined;

/**
 * Continues a CRC-32C over `data`. Start with `crc = 0` for a fresh checksum;
 * the pre- and post-inversion are applied inside, so chaining calls works:
 * `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`.
 *
 * @example
 * ```ts
 * crc32c(new TextEncoder().encode('123456789')); // 0xe3069283
 * ```
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  tables ??= buildTables() as Tables;
  const [T0, T1, T2, T3, T4, T5, T6, T7] = tables;
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const lo = (c ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
    c =
      (T7[lo & 0xff] as number) ^
      (T6[(lo >>> 8) & 0xff] as number) ^
      (T5[(lo >>> 16) & 0xff] as number) ^
      (T4[lo >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
    i += 8;
  }
  while (i < n) {
    c = (T0[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

/**
 * CRC-32C of `buf` with the 4-byte checksum field at `fieldOffset` taken as
 * zero (the VHDX rule), without modifying `buf`.
 */
export function crc32cWithZeroField(buf: Uint8Array, fieldOffset: number): number {
  let c = crc32c(buf.subarray(0, fieldOffset));
  c = crc32c(ZERO4, c);
  return crc32c(buf.subarray(fieldOffset + 4), c);
}

const ZERO4 = new Uint8Array(4);
