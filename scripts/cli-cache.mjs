// Makes the CLI's code cache, DIR/cli/vdisk-bundle.cjs.cache (see src/cli/launch.ts),
// for the Node that runs this script: it runs `vdisk info` on a small qcow2
// with the launcher told to save the code of every function it compiled.
// Run by scripts/bundle-cli.mjs after each build and by `npm install` (the
// user's Node is rarely the packer's). Never fails: without a cache the CLI
// compiles its bundle from source, as it would with a stale one.
// Usage: node scripts/cli-cache.mjs [DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Builds DIR/cli/vdisk-bundle.cjs.cache; returns whether it was written. */
export function buildCodeCache(dir) {
  const bin = join(dir, 'cli', 'vdisk.cjs');
  const bundle = join(dir, 'cli', 'vdisk-bundle.cjs');
  if (!existsSync(bundle) || !existsSync(bin)) return false;
  rmSync(`${bundle}.cache`, { force: true });
  const tmp = mkdtempSync(join(tmpdir(), 'vdisk-cache-'));
  try {
    const image = join(tmp, 'warm-up.qcow2');
    const run = (args, env = {}) =>
      spawnSync(process.execPath, [bin, ...args], { stdio: 'ignore', env: { ...process.env, ...env }, timeout: 60_000 }).status === 0;
    const ok = run(['create', '-q', '-f', 'qcow2', image, '1G']) && run(['info', image], { VDISK_WRITE_CODE_CACHE: '1' });
    if (!ok) console.error('cli-cache: warm-up run failed; the CLI starts without a code cache');
    return ok && existsSync(`${bundle}.cache`);
  } catch (err) {
    console.error(`cli-cache: ${err instanceof Error ? err.message : String(err)}; the CLI starts without a code cache`);
    return false;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildCodeCache(resolve(process.argv[2] ?? 'dist'));
}
