/**
 * libyal's pyvhdi as an independent VHDX reader. Debian installs it for the
 * system python (/usr/bin/python3), which may not be the first python3 on
 * PATH; both are tried.
 */
import { spawnSync } from 'node:child_process';

const SCRIPT = `
import sys, pyvhdi
def op(n):
    f = pyvhdi.file(); f.open(n); return f
f = op(sys.argv[1])
parent = None
if len(sys.argv) > 3:
    parent = op(sys.argv[3])  # keep a reference: a collected parent closes its file
    f.set_parent(parent)
size = f.get_media_size()
with open(sys.argv[2], 'wb') as o:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off)); off += n
`;

function findPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import pyvhdi'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** The python that imports pyvhdi, if any. */
export const pyvhdiPython = findPython();

/** Reads `image` (with `parent` for a differencing image) to the raw file `out` through pyvhdi. */
export function pyvhdiRead(image: string, out: string, parent?: string): void {
  if (!pyvhdiPython) throw new Error('pyvhdi is not installed');
  const r = spawnSync(pyvhdiPython, ['-c', SCRIPT, image, out, ...(parent ? [parent] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pyvhdi failed on ${image}: ${r.stderr}`);
}
