// The package's `install` script. In the published package: builds the
// optional native module and the CLI's code cache for the Node that
// installs it. In a source checkout (src/ is not published) it also builds
// dist/ first, which is what a `prepare` script would do: the published
// package has none, so no package manager ever tries to build an installed
// copy from sources it does not ship. Never fails the install for the
// native module or the cache (both have fallbacks); a failed build of a
// checkout does fail it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const node = (...args) => spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' }).status;

node('scripts/build-native.mjs');
if (existsSync(`${root}src/index.ts`) && existsSync(`${root}tsconfig.json`)) {
  // npm runs lifecycle scripts with npm_execpath set; outside npm, `npm` on PATH.
  const npm = process.env.npm_execpath;
  const r = npm && npm.endsWith('.js')
    ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  process.exit(r.status ?? 1);
}
node('scripts/cli-cache.mjs', 'dist');
