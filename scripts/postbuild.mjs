// Checks that src/version.ts matches package.json, makes the CLI executable
// and leaves in dist/cli only the bundled CLI (the package's `bin`): the
// library imports nothing from cli/, so the unbundled modules would only be
// a second copy of the same program.
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const version = readFileSync(new URL('../src/version.ts', import.meta.url), 'utf8');
if (!version.includes(`'${pkg.version}'`)) {
  console.error(`src/version.ts does not match package.json version ${pkg.version}`);
  process.exit(1);
}
const cli = fileURLToPath(new URL('../dist/cli/', import.meta.url));
/** The bundled CLI: the bin, the bundle it runs, and the code cache made for this Node. */
const KEEP = new Set(['vdisk.cjs', 'vdisk-bundle.cjs', 'vdisk-bundle.cjs.cache']);
// Without the bundle (no esbuild) vdisk.cjs runs bin.js unbundled: keep everything then.
if (existsSync(join(cli, 'vdisk-bundle.cjs'))) {
  for (const name of readdirSync(cli)) if (!KEEP.has(name)) rmSync(join(cli, name), { recursive: true, force: true });
}
chmodSync(join(cli, 'vdisk.cjs'), 0o755);
