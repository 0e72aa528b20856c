/**
 * VMDK on-disk constants (VMware Virtual Disk Format 1.1 and QEMU's
 * block/vmdk.c). Everything is little-endian except the magic compare.
 */

export const SECTOR = 512;

/** `KDMV` read as a big-endian u32 (hosted sparse extent, VMDK4). */
export const VMDK4_MAGIC = 0x4b444d56;
/** `COWD` read as a big-endian u32 (ESX sparse extent, VMDK3). */
export const VMDK3_MAGIC = 0x434f5744;

export const FLAG_NL_DETECT = 1 << 0;
export const FLAG_RGD = 1 << 1;
export const FLAG_ZERO_GRAIN = 1 << 2;
export const FLAG_COMPRESS = 1 << 16;
export const FLAG_MARKER = 1 << 17;

export const COMPRESSION_DEFLATE = 1;

/** Grain-table entry of a zeroed grain (with FLAG_ZERO_GRAIN). */
export const GTE_ZEROED = 1;

/** Largest sector an extent may address (a GTE is a u32). */
export const MAX_EXTENT_SECTORS = 2 ** 32;

/** Header layout offsets (bytes from the start of the extent, magic included). */
export const HDR = {
  magic: 0,
  version: 4,
  flags: 8,
  capacity: 12,
  granularity: 20,
  descOffset: 28,
  descSize: 36,
  numGtesPerGt: 44,
  rgdOffset: 48,
  gdOffset: 56,
  grainOffset: 64,
  uncleanShutdown: 72,
  checkBytes: 73,
  compressAlgorithm: 77,
  size: 79,
} as const;

/** The newline-detection bytes every VMDK4 header carries. */
export const CHECK_BYTES = [0x0a, 0x20, 0x0d, 0x0a] as const;

/** `gdOffset` meaning "the grain directory is found through the footer". */
export const GD_AT_END = 0xffffffffffffffffn;

/** Stream marker types (metadata markers have size 0). */
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

/** Bytes of a grain marker before the compressed data (lba u64 + size u32). */
export const GRAIN_MARKER_BYTES = 12;

/** What QEMU's create writes. */
export const DEFAULT_GRAIN_SECTORS = 128;
export const DEFAULT_GTES_PER_GT = 512;
export const DEFAULT_DESC_OFFSET = 1;
export const DEFAULT_DESC_SECTORS = 20;
/** streamOptimized images start their grains at 64 KiB, as VMware's do. */
export const STREAM_GRAIN_OFFSET = 128;
/** Split size of twoGbMaxExtent* subformats. */
export const SPLIT_SIZE = 0x80000000;
