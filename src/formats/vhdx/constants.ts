/**
 * VHDX on-disk constants (MS-VHDX v1.00): fixed offsets, signatures,
 * region and metadata item GUIDs, BAT states, and GUID byte helpers.
 * Every multi-byte field in VHDX is little-endian.
 */

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** The file identifier (`vhdxfile` + UTF-16 creator) is at 0; the headers follow. */
export const HEADER1_OFFSET = 64 * KiB;
export const HEADER2_OFFSET = 128 * KiB;
/** Headers are 4 KiB structures; the CRC covers all 4 KiB. */
export const HEADER_SIZE = 4 * KiB;
export const REGION_TABLE1_OFFSET = 192 * KiB;
export const REGION_TABLE2_OFFSET = 256 * KiB;
/** Region tables (and the metadata table) are 64 KiB; the CRC covers all of it. */
export const REGION_TABLE_SIZE = 64 * KiB;
/** Everything below this is the header section. */
export const HEADER_SECTION_END = 1 * MiB;
export const METADATA_TABLE_SIZE = 64 * KiB;

export const SIG_FILE = 'vhdxfile';
export const SIG_HEADER = 0x64616568; // 'head'
export const SIG_REGION = 0x69676572; // 'regi'
export const SIG_METADATA = 'metadata';
export const SIG_LOG_ENTRY = 0x65676f6c; // 'loge'
export const SIG_LOG_DESC = 0x63736564; // 'desc'
export const SIG_LOG_ZERO = 0x6f72657a; // 'zero'
export const SIG_LOG_DATA = 0x61746164; // 'data'

export const LOG_SECTOR_SIZE = 4 * KiB;

/** Block sizes the spec allows (powers of two in between). */
export const BLOCK_SIZE_MIN = 1 * MiB;
export const BLOCK_SIZE_MAX = 256 * MiB;
/** 2^23: sectors one sector-bitmap block (1 MiB of bits) describes. */
export const SECTORS_PER_BITMAP = 1 << 23;
/** Largest virtual disk the spec (and qemu) allow: 64 TiB. */
export const MAX_IMAGE_SIZE = 64 * 1024 * 1024 * MiB;

/** Payload BAT entry states (bits 0–2). */
export const PayloadState = {
  NotPresent: 0,
  Undefined: 1,
  Zero: 2,
  Unmapped: 3,
  /** UNMAPPED as written by the v0.95 draft. */
  UnmappedV095: 5,
  FullyPresent: 6,
  PartiallyPresent: 7,
} as const;
/** Sector-bitmap BAT entry states. */
export const SB_PRESENT = 6;

/** File-parameter flags. */
export const PARAM_LEAVE_BLOCKS_ALLOCATED = 1;
export const PARAM_HAS_PARENT = 2;
/** Metadata entry flags (1, is-user, is never set by vdisk nor read). */
export const META_IS_VIRTUAL_DISK = 2;
export const META_IS_REQUIRED = 4;
/** Region entry flag. */
export const REGION_REQUIRED = 1;

/** GUID text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`) to its 16 on-disk bytes (first three fields little-endian). */
export function guidBytes(text: string): Uint8Array {
  // Read without regular expressions: the module's ten GUIDs are made at start-up of every command.
  const b = new Uint8Array(16);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x7d || c === 0x2d) continue; // { } -
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (v < 0 || n >= 32) throw new TypeError(`Bad GUID '${text}'`);
    b[n >> 1] = (b[n >> 1] as number) | (n & 1 ? v : v << 4);
    n++;
  }
  if (n !== 32) throw new TypeError(`Bad GUID '${text}'`);
  const out = new Uint8Array(16);
  out.set([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] as number[], 0);
  out.set(b.subarray(8), 8);
  return out;
}

/** The 16 on-disk bytes of a GUID as upper-case text in braces (`{...}`), as parent_linkage stores it. */
export function guidText(bytes: Uint8Array): string {
  const h = (i: number): string => (bytes[i] as number).toString(16).padStart(2, '0');
  const s = [3, 2, 1, 0].map(h).join('') + '-' + [5, 4].map(h).join('') + '-' + [7, 6].map(h).join('') + '-' + [8, 9].map(h).join('') + '-' + [10, 11, 12, 13, 14, 15].map(h).join('');
  return `{${s.toUpperCase()}}`;
}

/** True when `buf[off..off+16)` equals `guid`. */
export function guidAt(buf: Uint8Array, off: number, guid: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== guid[i]) return false;
  return true;
}

/** True when 16 bytes at `off` are all zero. */
export function guidIsZero(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true;
}

export const GUID_BAT = guidBytes('2DC27766-F623-4200-9D64-115E9BFD4A08');
export const GUID_METADATA = guidBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E');
export const GUID_FILE_PARAMETERS = guidBytes('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
export const GUID_VIRTUAL_DISK_SIZE = guidBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
export const GUID_PAGE83 = guidBytes('BECA12AB-B2E6-4523-93EF-C309E000C746');
export const GUID_LOGICAL_SECTOR = guidBytes('8141BF1D-A96F-4709-BA47-F233A8FAAB5F');
export const GUID_PHYSICAL_SECTOR = guidBytes('CDA348C7-445D-4471-9CC9-E9885251C556');
export const GUID_PARENT_LOCATOR = guidBytes('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');
/** Parent locator type of a VHDX parent. */
export const GUID_PARENT_TYPE_VHDX = guidBytes('B04AEFB7-D19E-4A81-B789-25B8E9445913');

/** A random GUID's 16 bytes (version-4 UUID layout). */
export function randomGuid(): Uint8Array {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[7] = ((b[7] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  return b;
}

/** Most a replayed log may grow the file (a block allocation in flight is the legitimate case). */
export const GiB_BOUND = 1024 * MiB;
