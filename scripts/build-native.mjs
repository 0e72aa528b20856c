// Builds vdisk's optional native module (native/) with node-gyp at install
// time. It must never fail the install: without it vdisk falls back to
// portable code (zero scanning instead of SEEK_DATA, written zeros instead of
// fallocate, no OFD image locks) and says so once through a warning.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// VDISK_NO_NATIVE is the one switch: set at install it skips the build, set at run time it skips loading.
if (process.platform !== 'linux' || process.env.VDISK_NO_NATIVE) process.exit(0);
const dir = fileURLToPath(new URL('../native/', import.meta.url));
function findGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a dependency: use the copy npm bundles
  }
  const npmCli = process.env.npm_execpath ?? spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).stdout.trim();
  if (npmCli) candidates.push(join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}
const gyp = findGyp();
if (!gyp) {
  console.warn('vdisk: node-gyp not found; the native module is not built (portable fallbacks will be used)');
  process.exit(0);
}
// Build against the headers installed with Node (no download): npm's nodedir, or the prefix Node runs from.
const prefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const args = [gyp, 'rebuild', '--directory', dir, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  console.warn(`vdisk: building the native module failed; portable fallbacks will be used\n${(r.stderr ?? '').split('\n').slice(-5).join('\n')}`);
}
