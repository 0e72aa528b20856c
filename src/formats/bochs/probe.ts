/**
 * Bochs signature, as QEMU's bochs_probe over a 512-byte header: the magic,
 * type and subtype C strings (each NUL-terminated where the literal ends)
 * and version 1 or 2 (little-endian u32 at 64).
 */
import { isCStringAt } from '../probe-bytes.js';

const HEADER_SIZE = 512;
const VERSIONS = [0x00010000, 0x00020000];

/** Score for the first bytes of a file: 100 for a Bochs image, 0 otherwise. Never throws. */
export function probeBochs(head: Uint8Array): number {
  if (head.length < HEADER_SIZE) return 0;
  if (!isCStringAt(head, 0, 'Bochs Virtual HD Image') || !isCStringAt(head, 32, 'Redolog') || !isCStringAt(head, 48, 'Growing')) return 0;
  return VERSIONS.includes(new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(64, true)) ? 100 : 0;
}
