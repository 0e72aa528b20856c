/**
 * Parallels signature, as QEMU's parallels_probe: one of the two 16-byte
 * magics and version 2 (little-endian) in a whole 64-byte header.
 */
import { startsWithAscii } from '../probe-bytes.js';

const MAGICS = ['WithoutFreeSpace', 'WithouFreSpacExt'];
const VERSION = 2;
const HEADER_SIZE = 64;

/** Score for the first bytes of a file: 100 for a Parallels image, 0 otherwise. Never throws. */
export function probeParallels(head: Uint8Array): number {
  if (head.length < HEADER_SIZE) return 0;
  if (!MAGICS.some((m) => startsWithAscii(head, 0, m))) return 0;
  return new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(16, true) === VERSION ? 100 : 0;
}
