/** QED signature, as QEMU's bdrv_qed_probe: magic `QED\0` (little-endian) in a whole 64-byte header. */
const QED_MAGIC = 0x00444551;
const HEADER_SIZE = 64;

/** Score for the first bytes of a file: 100 for a QED image, 0 otherwise. Never throws. */
export function probeQed(head: Uint8Array): number {
  if (head.length < HEADER_SIZE) return 0;
  return new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0, true) === QED_MAGIC ? 100 : 0;
}
