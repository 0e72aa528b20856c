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
} as const;
