/**
 * The Parallels header (docs/interop/parallels.txt; little-endian, 64 bytes
 * at offset 0, the BAT right after it). Pure functions: decode and check in
 * QEMU's order with its messages (parallels_open), encode.
 *
 * ```
 *  0 magic (16)   "WithoutFreeSpace" (v1: offsets in sectors) or
 *                 "WithouFreSpacExt" (offsets in clusters)
 * 16 version u32 (2)     36 nb_sectors u64 (v1: low 32 bits)
 * 20 heads u32           44 inuse u32 (0x746F6E59 while open read/write)
 * 24 cylinders u32       48 data_off u32 (sectors)
 * 28 tracks u32 (cluster size in sectors)   52 flags u32
 * 32 bat_entries u32     56 ext_off u64 (format extension, sectors)
 * ```
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';

/** Bytes of the header; BAT entry i is at 64 + 4i. */
export const PRL_HEADER_SIZE = 64;
/** The v1 signature: BAT entries count sectors. */
const PRL_MAGIC_V1 = 'WithoutFreeSpace';
/** The signature QEMU writes: BAT entries count clusters. */
const PRL_MAGIC_V2 = 'WithouFreSpacExt';
/** The only version. */
const PRL_VERSION = 2;
/** `inuse` while a program has the image open read/write. */
export const PRL_INUSE_MAGIC = 0x746f6e59;
/** Cluster size of a new image. */
export const PRL_DEFAULT_CLUSTER_SIZE = 1024 * 1024;
/** Geometry QEMU writes (not used on the image level). */
const PRL_HEADS = 16;
const PRL_SECTORS_PER_CYLINDER = 32;
/** QEMU's MAX_PARALLELS_IMAGE_FACTOR: at most 2^32 clusters. */
export const PRL_MAX_IMAGE_FACTOR = 2 ** 32;
/** Largest `tracks` QEMU opens (INT32_MAX / 513: BAT offsets then fit 63 bits). */
const PRL_MAX_TRACKS = Math.floor(0x7fffffff / 513);
/** Largest BAT QEMU opens (INT_MAX / 4 entries). */
const PRL_MAX_BAT_ENTRIES = Math.floor(0x7fffffff / 4);

const SECTOR = 512;

/** Byte offsets of the header fields. */
export const PRL_FIELD = {
  version: 16,
  heads: 20,
  cylinders: 24,
  tracks: 28,
  batEntries: 32,
  nbSectors: 36,
  inuse: 44,
  dataOff: 48,
  flags: 52,
  extOff: 56,
} as const;

/** The header fields vdisk uses, after QEMU's checks. */
export interface PrlHeader {
  /** True for "WithouFreSpacExt" (BAT entries in clusters). */
  readonly ext: boolean;
  /** Cluster size in sectors. */
  readonly tracks: number;
  /** Sectors per BAT unit: 1 for v1, `tracks` for the ext signature. */
  readonly offMultiplier: number;
  /** BAT entries. */
  readonly batEntries: number;
  /** Virtual size in sectors (v1: the low 32 bits of the field). */
  readonly sectors: number;
  /** The `inuse` field. */
  readonly inuse: number;
  /** The `data_off` field (sectors; 0 on old v1 images). */
  readonly dataOff: number;
  /** The `ext_off` field (sectors; 0: no format extension), undefined above 2^53 bytes. */
  readonly extOff: number | undefined;
}

function startsWith(buf: Uint8Array, magic: string): boolean {
  for (let i = 0; i < magic.length; i++) if (buf[i] !== magic.charCodeAt(i)) return false;
  return true;
}

/** Bytes `n` sectors span, or undefined when that passes 2^53. */
export function sectorBytes(n: number | bigint): number | undefined {
  const bytes = BigInt(n) * 512n;
  return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(bytes);
}

/**
 * Decodes the header and checks it as parallels_open does, with its
 * messages, before anything is sized from it.
 *
 * @throws {CorruptImageError} "Image not in Parallels format", "Invalid image: Zero sectors per track"
 * @throws {UnsupportedError} "Invalid image: Too big cluster", "Catalog too large", a virtual size above 2^53
 */
export function parsePrlHeader(buf: Uint8Array): PrlHeader {
  const v = new DataView(buf.buffer, buf.byteOffset, PRL_HEADER_SIZE);
  const u32 = (at: number): number => v.getUint32(at, true);
  const v1 = startsWith(buf, PRL_MAGIC_V1);
  if (u32(PRL_FIELD.version) !== PRL_VERSION || (!v1 && !startsWith(buf, PRL_MAGIC_V2))) {
    throw new CorruptImageError('Image not in Parallels format', { offset: 0 });
  }
  const tracks = u32(PRL_FIELD.tracks);
  if (tracks === 0) throw new CorruptImageError('Invalid image: Zero sectors per track', { offset: PRL_FIELD.tracks });
  if (tracks > PRL_MAX_TRACKS) throw new UnsupportedError('Invalid image: Too big cluster', { offset: PRL_FIELD.tracks });
  const batEntries = u32(PRL_FIELD.batEntries);
  if (batEntries > PRL_MAX_BAT_ENTRIES) throw new UnsupportedError('Catalog too large', { offset: PRL_FIELD.batEntries });
  const rawSectors = v.getBigUint64(PRL_FIELD.nbSectors, true);
  const sectors = v1 ? Number(rawSectors & 0xffffffffn) : rawSectors;
  if (sectorBytes(sectors) === undefined) {
    throw new UnsupportedError(`Parallels image size (${rawSectors} sectors) is larger than vdisk supports (2^53 - 1 bytes)`, { offset: PRL_FIELD.nbSectors });
  }
  const extOff = v.getBigUint64(PRL_FIELD.extOff, true);
  return {
    ext: !v1,
    tracks,
    offMultiplier: v1 ? 1 : tracks,
    batEntries,
    sectors: Number(sectors),
    inuse: u32(PRL_FIELD.inuse),
    dataOff: u32(PRL_FIELD.dataOff),
    extOff: sectorBytes(extOff) === undefined ? undefined : Number(extOff),
  };
}

/** What a new image's header records. */
export interface PrlNewHeader {
  readonly size: number;
  readonly clusterSize: number;
  readonly batEntries: number;
  readonly dataOffSectors: number;
}

/** Encodes the header of a new image as parallels_co_create writes it. */
export function serializePrlHeader(h: PrlNewHeader): Uint8Array {
  const buf = new Uint8Array(PRL_HEADER_SIZE);
  const v = new DataView(buf.buffer);
  buf.set(Buffer.from(PRL_MAGIC_V2, 'latin1'), 0);
  v.setUint32(PRL_FIELD.version, PRL_VERSION, true);
  v.setUint32(PRL_FIELD.heads, PRL_HEADS, true);
  // truncated to 32 bits, as the C assignment does
  v.setUint32(PRL_FIELD.cylinders, Math.floor(h.size / SECTOR / PRL_HEADS / PRL_SECTORS_PER_CYLINDER) % 2 ** 32, true);
  v.setUint32(PRL_FIELD.tracks, h.clusterSize / SECTOR, true);
  v.setUint32(PRL_FIELD.batEntries, h.batEntries, true);
  v.setBigUint64(PRL_FIELD.nbSectors, BigInt(Math.ceil(h.size / SECTOR)), true);
  v.setUint32(PRL_FIELD.dataOff, h.dataOffSectors, true);
  return buf;
}
