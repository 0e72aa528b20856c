/**
 * libvhdi's Python reader (Debian python3-libvhdi) as an independent VHD
 * reader. Tests skip its part with a message when it is not installed.
 */
import { spawnSync } from 'node:child_process';
import { SYSTEM_PYTHON } from '../../helpers/python.js';
import { createHash } from 'node:crypto';

/** True when `import pyvhdi` works. */
export const hasPyvhdi = spawnSync(SYSTEM_PYTHON, ['-c', 'import pyvhdi'], { encoding: 'utf8' }).status === 0;

const SCRIPT = `
import sys, hashlib, pyvhdi
f = pyvhdi.file()
f.open(sys.argv[1])
if len(sys.argv) > 2:
    p = pyvhdi.file()
    p.open(sys.argv[2])
    f.set_parent(p)
size = f.get_media_size()
h = hashlib.sha256()
f.seek(0)
left = size
while left > 0:
    n = min(1 << 20, left)
    h.update(f.read_buffer(n))
    left -= n
print(size, h.hexdigest())
`;

/** Media size and SHA-256 of the guest data as libvhdi reads it (with `parent` set for differencing disks). */
export function pyvhdiDigest(path: string, parent?: string): { size: number; sha256: string } {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', SCRIPT, path, ...(parent ? [parent] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`pyvhdi failed on ${path}: ${r.stderr}`);
  const [size, sha256] = r.stdout.trim().split(' ');
  return { size: Number(size), sha256: sha256 ?? '' };
}

/** SHA-256 of bytes, to compare with {@link pyvhdiDigest}. */
export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

let warned = false;
/** Skips (with a one-time message) when pyvhdi is missing; returns true when it may be used. */
export function usePyvhdi(): boolean {
  if (hasPyvhdi) return true;
  if (!warned) {
    warned = true;
    process.stderr.write('\n*** pyvhdi (python3-libvhdi) not installed: libvhdi cross-checks are SKIPPED ***\n\n');
  }
  return false;
}
