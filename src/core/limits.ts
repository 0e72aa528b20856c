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
  /**
   * Default cap on the size a compressed or zipped (gzip, zstd, bzip2, zip) image inflates to
   * (IngestPolicy.maxInflatedSize): above the cloud images that are shipped
   * wrapped (a few GiB to a few tens of GiB), far below what a small
   * deflate bomb (about 1:1000) would otherwise write to the temporary
   * directory. Zero blocks are left as holes, but they count.
   */
  maxInflatedBytes: 64 * 1024 * 1024 * 1024,
  /** Bytes of the start of a file format probes see (QEMU's BLOCK_PROBE_BUF_SIZE; zero-padded past the end). */
  probeBytes: 512,
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
  // ---- vpc (VHD): block/vpc.c's limits plus vdisk's memory caps ----
  /** vpc: largest virtual size in sectors (VHD_MAX_SECTORS, 2040 GiB). */
  vpcMaxSectors: 0xff000000,
  /** vpc: most BAT entries QEMU accepts (INT_MAX / 4). */
  vpcMaxTableEntries: Math.floor(0x7fffffff / 4),
  /** vpc: sector bitmaps of differencing disks kept in memory per open image. */
  vpcBitmapCacheBlocks: 64,
  /** vpc: longest parent locator payload read from a differencing disk. */
  vpcMaxLocatorBytes: 64 * 1024,
  // ---- vdi: block/vdi.c's limits plus vdisk's memory caps ----
  /** vdi: most blocks in an image (VDI_BLOCKS_IN_IMAGE_MAX: the block map stays below 2 GiB). */
  vdiMaxBlocksInImage: 0x1fffff80,
  /** vdi: largest disk size (VDI_DISK_SIZE_MAX = max blocks × 1 MiB, about 512 TiB). */
  vdiMaxDiskSize: 0x1fffff80 * 1024 * 1024,
  /** vdi: block map pages kept in memory per open image (a whole map up to 16 Mi entries: 16 TiB at 1 MiB blocks). */
  vdiBlockMapCacheBytes: 64 * 1024 * 1024,
  // ---- parallels (block/parallels.c, parallels-ext.c) ----
  /** parallels: BAT pages kept in memory per open image (the whole BAT up to 16 Mi entries). */
  parallelsBatCacheBytes: 64 * 1024 * 1024,
  /** parallels: largest format-extension cluster vdisk reads (held whole to check its MD5; QEMU reads any cluster size, 1 MiB in practice). */
  parallelsMaxExtensionBytes: 64 * 1024 * 1024,
  /** parallels: largest dirty bitmap of the format extension read into memory (bits: 2^31 of them, 2 PiB at 1 MiB granularity). */
  parallelsMaxBitmapBytes: 256 * 1024 * 1024,
  // --- vhdx (src/formats/vhdx) ---
  /** vhdx: largest BAT, held in memory as qemu holds it: a valid image's largest (64 TiB at 1 MiB blocks: 537,001,984 bytes with sector bitmaps). */
  vhdxMaxBatBytes: 513 * 1024 * 1024,
  /** vhdx: largest dirty log vdisk reads to replay (qemu and Hyper-V default to 1 MiB). */
  vhdxMaxLogBytes: 64 * 1024 * 1024,
  /** vhdx: bytes checksummed while searching a dirty log for its active sequence (bounds hostile logs). */
  vhdxLogScanBudgetBytes: 256 * 1024 * 1024,
  /** vhdx: largest parent locator metadata item. */
  vhdxMaxParentLocatorBytes: 64 * 1024,
  /** vhdx: largest sector-bitmap read per mapping call of a differencing image. */
  vhdxMaxBitmapReadBytes: 64 * 1024,
  // --- end vhdx ---
  // ---- vmdk (block/vmdk.c) ----
  /** vmdk: largest descriptor text read, in a descriptor file or embedded (QEMU reads at most 1 MiB - 1). */
  vmdkMaxDescriptorBytes: 1024 * 1024 - 1,
  /** vmdk: longest extent file name in a descriptor (QEMU's sscanf field width). */
  vmdkMaxExtentNameBytes: 511,
  /** vmdk: longest parentFileNameHint (QEMU's backing_file buffer). */
  vmdkMaxParentNameBytes: 4095,
  /** vmdk: largest grain, in sectors (QEMU: 0x200000 sectors = 1 GiB, "Invalid granularity"). */
  vmdkMaxGrainSectors: 0x200000,
  /** vmdk: most grain-table entries per grain table in a KDMV extent (QEMU: "L2 table size too big"). */
  vmdkMaxGtesPerGt: 512,
  /** vmdk: most grain-directory entries, QEMU's L1 limit (128 MiB of table; 1 PiB at 64 KiB grains). */
  vmdkMaxGdEntries: 32 * 1024 * 1024,
  /** vmdk: bytes of grain tables kept in memory per extent (read cache). */
  vmdkGrainTableCacheBytes: 4 * 1024 * 1024,
  /** vmdk: largest compressed grain payload, as a multiple of the grain size (QEMU reads two grains). */
  vmdkMaxCompressedGrainFactor: 2,
  /** vmdk: most grain tables of a streamOptimized image held in memory while writing before they are appended. */
  vmdkMaxDirtyStreamTables: 4096,
  // ---- read-only formats: dmg, cloop, bochs (block/dmg.c, cloop.c, bochs.c) ----
  /** dmg: largest stored chunk (DMG_LENGTHS_MAX, "length N for chunk I is larger than max"). */
  dmgMaxChunkBytes: 64 * 1024 * 1024,
  /** dmg: most sectors of a chunk that is decoded (DMG_SECTORCOUNTS_MAX; zero and ignore chunks are exempt). */
  dmgMaxChunkSectors: (64 * 1024 * 1024) / 512,
  /** dmg: largest XML property list (QEMU's cap; a sample's is about 1 MiB). */
  dmgMaxXmlBytes: 16 * 1024 * 1024,
  /** dmg: largest single resource of a resource fork (vdisk's cap; QEMU allocates whatever the fork says). */
  dmgMaxResourceBytes: 64 * 1024 * 1024,
  /** dmg: most resources walked in a resource fork (vdisk's cap on a loop QEMU bounds only by the fork length). */
  dmgMaxResources: 65536,
  /** dmg: most chunks held in memory (vdisk's cap: a 1 TiB image of hdiutil's 1 MiB chunks; about 120 MiB while the table is built). */
  dmgMaxChunks: 1024 * 1024,
  /** cloop: largest block (MAX_BLOCK_SIZE). */
  cloopMaxBlockBytes: 64 * 1024 * 1024,
  /** cloop: largest compressed block (2 × MAX_BLOCK_SIZE, "invalid compressed block size"). */
  cloopMaxCompressedBytes: 2 * 64 * 1024 * 1024,
  /** cloop: largest offsets table ("image requires too many offsets"); vdisk reads only its part inside the file. */
  cloopMaxOffsetsBytes: 512 * 1024 * 1024,
  /** bochs: most catalog entries ("Catalog size is too large"). */
  bochsMaxCatalogEntries: 0x100000,
  /** bochs: largest extent ("Extent size N is too large"). */
  bochsMaxExtentBytes: 0x800000,
  // ---- qcow (v1, block/qcow.c) ----
  /** qcow: bytes of L1 table pages kept in memory per open image (QEMU holds the whole table, up to 2 GiB). */
  qcowL1CacheBytes: 16 * 1024 * 1024,
  /** qcow: bytes of L2 tables kept in memory per open image (QEMU keeps 16 tables). */
  qcowL2CacheBytes: 16 * 1024 * 1024,
  // ---- end qcow ----
} as const;
