/**
 * qcow (version 1) signature, as QEMU's qcow_probe: magic `QFI\xfb` and
 * version 1 in a whole 48-byte header (big-endian). Version 2 and later
 * belong to qcow2.
 */
const QCOW_MAGIC = 0x514649fb;
const HEADER_SIZE = 48;

/** Score for the first bytes of a file: 100 for a qcow v1 image, 0 otherwise. Never throws. */
export function probeQcow(head: Uint8Array): number {
  if (head.length < HEADER_SIZE) return 0;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return v.getUint32(0) === QCOW_MAGIC && v.getUint32(4) === 1 ? 100 : 0;
}
