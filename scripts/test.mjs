// Runs every compiled *.test.js under build/test with Node's test runner.
// (Node 20's `--test DIR` also runs every .js file under a "test" folder,
// helpers included; listing the test files keeps helpers out.)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['build/test'];
const files = roots.flatMap((r) => (r.endsWith('.js') ? [r] : find(r))).sort();
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
