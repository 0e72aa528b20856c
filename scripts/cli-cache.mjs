// Makes the CLI's code cache, DIR/cli/vdisk-bundle.cjs.cache (see src/cli/launch.ts),
// for the Node that runs this script: it runs `vdisk info` on a small qcow2,
// then converts raw → qcow2 and qcow2 → raw, each run told to save the code of
// every function compiled so far (a run starts from the cache the one before
// saved, so the last holds all three: convert starts ~12% cheaper in
// instructions, info ~3% dearer for the larger cache it reads).
// Run by scripts/bundle-cli.mjs after each build and by `npm install` (the
// user's Node is rarely the packer's). Never fails: without a cache the CLI
// compiles its bundle from source, as it would with a stale one.
// Usage: node scripts/cli-cache.mjs [DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
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
    const raw = join(tmp, 'warm-up.raw');
    const run = (args, env = {}) =>
      spawnSync(process.execPath, [bin, ...args], { stdio: 'ignore', env: { ...process.env, ...env }, timeout: 60_000 }).status === 0;
    const save = (args) => run(args, { VDISK_WRITE_CODE_CACHE: '1' });
    // Data, zeros and a hole, so that the copy's data path is compiled too.
    const bytes = new Uint8Array(2 * 1024 * 1024).fill(0x5a, 0, 1024 * 1024);
    writeFileSync(raw, bytes);
    truncateSync(raw, 4 * 1024 * 1024);
    const ok =
      run(['create', '-q', '-f', 'qcow2', image, '1G']) &&
      save(['info', image]) &&
      save(['convert', '-f', 'raw', '-O', 'qcow2', raw, join(tmp, 'out.qcow2')]) &&
      save(['convert', '-f', 'qcow2', '-O', 'raw', join(tmp, 'out.qcow2'), join(tmp, 'out.raw')]);
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
