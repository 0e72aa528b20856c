// Checks that src/version.ts matches package.json and makes the CLI executable.
import { chmodSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const version = readFileSync(new URL('../src/version.ts', import.meta.url), 'utf8');
if (!version.includes(`'${pkg.version}'`)) {
  console.error(`src/version.ts does not match package.json version ${pkg.version}`);
  process.exit(1);
}
chmodSync(new URL('../dist/cli/bin.js', import.meta.url), 0o755);
chmodSync(new URL('../dist/cli/vdisk.js', import.meta.url), 0o755);
chmodSync(new URL('../dist/cli/vdisk.cjs', import.meta.url), 0o755);
