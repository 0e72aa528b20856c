/**
 * The `formatSpecific` block of {@link ImageInfo}: qemu's `ImageInfoSpecific`
 * with camelCase keys, typed per built-in format. Drivers describe it with
 * qemu's kebab-case keys (the JSON qemu-img prints); the conversion both ways
 * is mechanical, so the JSON round-trips exactly.
 */
import type { FormatDescription } from '../block/types.js';

/** qcow2's facts (qemu's `ImageInfoSpecificQCow2`). */
export interface Qcow2InfoData {
  /** `0.10` (version 2) or `1.1` (version 3). */
  compat: '0.10' | '1.1';
  /** The external data file's name, when the image has one. */
  dataFile?: string | undefined;
  /** True when the external data file is valid as a raw image on its own. */
  dataFileRaw?: boolean | undefined;
  /** Subclusters (version 3 only). */
  extendedL2?: boolean | undefined;
  /** Lazy refcounts (version 3 only). */
  lazyRefcounts?: boolean | undefined;
  /** The corrupt bit (version 3 only). */
  corrupt?: boolean | undefined;
  /** Width of a refcount entry in bits. */
  refcountBits: number;
  /** How the image is encrypted, when it is. */
  encrypt?: Qcow2EncryptInfo | undefined;
  /** Persistent dirty bitmaps, when there are any. */
  bitmaps?: Qcow2BitmapInfo[] | undefined;
  /** The codec of compressed clusters. */
  compressionType: 'zlib' | 'zstd';
}

/** qcow2's encryption: the legacy AES scheme, or a LUKS header inside the image. */
export type Qcow2EncryptInfo = Qcow2AesInfo | Qcow2LuksInfo;

/** qcow2's legacy AES encryption (`encrypt.format=aes`). */
export interface Qcow2AesInfo {
  /** The scheme. */
  format: 'aes';
}

/** qcow2 encrypted with a LUKS header inside the image (`encrypt.format=luks`). */
export interface Qcow2LuksInfo extends LuksInfoData {
  /** The scheme. */
  format: 'luks';
}

/** One persistent bitmap of a qcow2 image (qemu's `Qcow2BitmapInfo`). */
export interface Qcow2BitmapInfo {
  /** Bitmap name. */
  name: string;
  /** Bytes of guest data per bit. */
  granularity: number;
  /** `in-use` (not saved cleanly), `auto` (recording writes). */
  flags: string[];
}

/** vmdk's facts (qemu's `ImageInfoSpecificVmdk`). */
export interface VmdkInfoData {
  /** The descriptor's `createType` (`monolithicSparse`, `streamOptimized`, ...). */
  createType: string;
  /** Content ID. */
  cid: number;
  /** The parent's content ID (`0xffffffff` without a parent). */
  parentCid: number;
  /** The extents, in descriptor order. */
  extents: VmdkExtentInfo[];
}

/** One vmdk extent. */
export interface VmdkExtentInfo {
  /** The extent file's name. */
  filename: string;
  /** Its kind (`FLAT`, `SPARSE`, `VMFS`, ...). */
  format: string;
  /** Guest bytes it holds. */
  virtualSize: number;
  /** Grain size of a sparse extent. */
  clusterSize?: number | undefined;
  /** True for a compressed (streamOptimized) extent. */
  compressed?: boolean | undefined;
}

/** A LUKS header's facts (qemu's `QCryptoBlockInfoLUKS`). */
export interface LuksInfoData {
  /** Cipher algorithm (`aes-256`, ...). */
  cipherAlg: string;
  /** Cipher mode (`xts`, `cbc`, ...). */
  cipherMode: string;
  /** IV generator (`plain64`, `essiv`, ...). */
  ivgenAlg: string;
  /** Hash of the `essiv` IV generator. */
  ivgenHashAlg?: string | undefined;
  /** Hash of the key derivation. */
  hashAlg: string;
  /** Byte offset of the encrypted payload. */
  payloadOffset: number;
  /** PBKDF2 iterations of the master key digest. */
  masterKeyIters: number;
  /** The header's UUID. */
  uuid: string;
  /** The eight key slots. */
  slots: LuksSlotInfo[];
}

/** One LUKS key slot. */
export interface LuksSlotInfo {
  /** True when the slot holds a key. */
  active: boolean;
  /** PBKDF2 iterations, for an active slot. */
  iters?: number | undefined;
  /** Anti-forensic stripes, for an active slot. */
  stripes?: number | undefined;
  /** Byte offset of the slot's key material. */
  keyOffset: number;
}

/**
 * Format-specific facts of `info`, narrowed by `type`. Formats other than
 * these report none; a driver outside vdisk's built-ins may report its own
 * `type`, with its kebab-case keys camelCased the same way.
 */
export type FormatSpecificInfo = Qcow2SpecificInfo | VmdkSpecificInfo | LuksSpecificInfo;

/** `formatSpecific` of a qcow2 image. */
export interface Qcow2SpecificInfo {
  /** The format. */
  type: 'qcow2';
  /** Its facts. */
  data: Qcow2InfoData;
}

/** `formatSpecific` of a vmdk image. */
export interface VmdkSpecificInfo {
  /** The format. */
  type: 'vmdk';
  /** Its facts. */
  data: VmdkInfoData;
}

/** `formatSpecific` of a LUKS image. */
export interface LuksSpecificInfo {
  /** The format. */
  type: 'luks';
  /** Its facts. */
  data: LuksInfoData;
}

type Json = unknown;

/** Every object key of `value`, deeply, through `rename` (arrays and scalars kept). */
function renameKeys(value: Json, rename: (key: string) => string): Json {
  if (Array.isArray(value)) return value.map((v) => renameKeys(v, rename));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [rename(k), renameKeys(v, rename)]));
}

const camel = (key: string): string => key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A driver's `formatSpecific` (qemu's keys) as the typed, camelCase block. */
export function formatSpecificInfo(fs: NonNullable<FormatDescription['formatSpecific']>): FormatSpecificInfo {
  // The driver owns the shape; the types above document what the built-in drivers emit.
  return { type: fs.type, data: renameKeys(fs.data, camel) } as FormatSpecificInfo;
}

/** The typed block back in qemu's shape (`type` and `data` with kebab-case keys, in schema order). */
export function formatSpecificJson(fs: FormatSpecificInfo): { type: string; data: Record<string, unknown> } {
  return { type: fs.type, data: renameKeys(fs.data, kebab) as Record<string, unknown> };
}
