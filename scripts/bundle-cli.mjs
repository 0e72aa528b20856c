// Bundles the CLI (DIR/cli/bin.js and every module it reaches inside DIR)
// into one file, DIR/cli/vdisk.js, the package's `bin`. Loading ~250 small
// ESM files costs Node ~0.1 s of resolving, stat-ing and reading before any
// work starts; one file halves the CLI's start-up. npm packages stay
// external (zstd-wasm finds its .wasm beside its own module). Without
// esbuild (a devDependency) the bin is a one-line re-export of bin.js, so
// the CLI works either way, only slower to start.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'dist';
const entry = join(dir, 'cli', 'bin.js');
const out = join(dir, 'cli', 'vdisk.js');

let bundled = false;
try {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  bundled = true;
} catch (err) {
  console.error(`bundle-cli: ${err instanceof Error ? err.message : String(err)}; the CLI loads unbundled modules instead`);
}
if (!bundled) writeFileSync(out, "#!/usr/bin/env node\nimport './bin.js';\n");
chmodSync(out, 0o755);
