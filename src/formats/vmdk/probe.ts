/**
 * QEMU's vmdk_probe: a sparse magic (`KDMV`, `COWD`), or a text descriptor
 * whose first line that is neither a comment nor blank is `version=1|2|3`.
 * QEMU probes over the first 512 bytes only; so does this.
 */
import { VMDK3_MAGIC, VMDK4_MAGIC } from './layout.js';

const PROBE_BYTES = 512;
const NL = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const HASH = 0x23;

function versionLineAt(buf: Uint8Array, p: number): boolean {
  const rest = buf.length - p;
  const is = (s: string): boolean => rest >= s.length && Buffer.from(buf.buffer, buf.byteOffset + p, s.length).toString('latin1') === s;
  return ['1', '2', '3'].some((v) => is(`version=${v}\n`) || is(`version=${v}\r\n`));
}

/** Score for the first bytes of a file: 100 for a VMDK, 0 otherwise. Never throws. */
export function probeVmdk(head: Uint8Array): number {
  const buf = head.subarray(0, PROBE_BYTES);
  if (buf.length < 4) return 0;
  const magic = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0, false);
  if (magic === VMDK3_MAGIC || magic === VMDK4_MAGIC) return 100;
  const end = buf.length;
  let p = 0;
  while (p < end) {
    if (buf[p] === HASH) {
      while (p < end && buf[p] !== NL) p++;
      p++;
      continue;
    }
    if (buf[p] === SPACE) {
      while (p < end && buf[p] === SPACE) p++;
      if (p < end && buf[p] === CR) p++;
      if (p === end || buf[p] !== NL) return 0;
      p++;
      continue;
    }
    return versionLineAt(buf, p) ? 100 : 0;
  }
  return 0;
}
