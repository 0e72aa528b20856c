/**
 * Every hard bound vdisk applies to values read from images or given by
 * callers, in one table. QEMU's limits are the floor.
 */
export const LIMITS = {
  /** Default cap on backing-chain depth (images below the top). Raise with `maxChainDepth`. */
  maxChainDepth: 256,
  /** Largest virtual size or offset vdisk handles: JavaScript's exact-integer range. */
  maxOffset: Number.MAX_SAFE_INTEGER,
  /** Longest backing file name (qcow2's own cap). */
  maxBackingNameBytes: 1023,
  /** Largest single I/O request the block layer passes to a driver. */
  maxRequestBytes: 32 * 1024 * 1024,
  /** Bytes read from the start of a file for format probing. */
  probeBytes: 4096,
  /** qcow2: largest active or snapshot L1 table (QEMU's QCOW_MAX_L1_SIZE). */
  qcow2MaxL1Bytes: 32 * 1024 * 1024,
  /** qcow2: largest refcount table (QEMU's QCOW_MAX_REFTABLE_SIZE). */
  qcow2MaxRefcountTableBytes: 8 * 1024 * 1024,
  /** qcow2: most internal snapshots (QCOW_MAX_SNAPSHOTS). */
  qcow2MaxSnapshots: 65536,
  /** qcow2: largest snapshot table (QCOW_MAX_SNAPSHOTS_SIZE). */
  qcow2MaxSnapshotTableBytes: 64 * 1024 * 1024,
  /** qcow2: largest extra data of one snapshot entry (QCOW_MAX_SNAPSHOT_EXTRA_DATA). */
  qcow2MaxSnapshotExtraData: 1024,
  /** qcow2: most persistent bitmaps (QCOW2_MAX_BITMAPS). */
  qcow2MaxBitmaps: 65535,
  /** qcow2: largest bitmap directory (QCOW2_MAX_BITMAP_DIRECTORY_SIZE). */
  qcow2MaxBitmapDirectoryBytes: 1024 * 65535,
  /** qcow2: longest bitmap name. */
  qcow2MaxBitmapNameBytes: 1023,
  /** qcow2: bytes of L2 tables kept in memory per open image. */
  qcow2L2CacheBytes: 32 * 1024 * 1024,
  /** qcow2: bytes of refcount blocks kept in memory per open image. */
  qcow2RefcountCacheBytes: 8 * 1024 * 1024,
  /** qcow2: largest header extension payload vdisk keeps (it must also fit the header cluster). */
  qcow2MaxHeaderExtensionBytes: 2 * 1024 * 1024,
} as const;
