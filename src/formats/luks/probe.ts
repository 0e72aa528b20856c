/**
 * LUKS signature, as QEMU's qcrypto_block_luks_has_format: magic
 * `LUKS\xba\xbe` and version 1 (big-endian u16 at 6). LUKS2 headers are
 * not QEMU's luks format.
 */
const MAGIC = [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe];
const VERSION_OFFSET = 6;
const HEADER_PREFIX = 8;

/** Score for the first bytes of a file: 100 for a LUKS1 image, 0 otherwise. Never throws. */
export function probeLuks(head: Uint8Array): number {
  if (head.length < HEADER_PREFIX) return 0;
  if (!MAGIC.every((b, i) => head[i] === b)) return 0;
  return new DataView(head.buffer, head.byteOffset, head.byteLength).getUint16(VERSION_OFFSET) === 1 ? 100 : 0;
}
