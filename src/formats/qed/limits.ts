/**
 * vdisk's memory bounds for QED (qemu's own limits are in ./header.ts):
 * tables are read in pages through a cache of this size, and a check's
 * map of used clusters (one bit per cluster of the file) is refused past
 * a cap, as qemu's check fails when it cannot allocate it.
 */

/** Bytes of L1/L2 table pages kept in memory per open image. */
export const QED_TABLE_CACHE_BYTES = 16 * 1024 * 1024;
/** Largest used-cluster bitmap a check allocates (2^32 clusters: a 16 TiB file at 4 KiB clusters). */
export const QED_CHECK_MAX_BITMAP_BYTES = 512 * 1024 * 1024;
