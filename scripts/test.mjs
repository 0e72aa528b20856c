// Runs every compiled *.test.js under build/test with Node's test runner.
// (Node 20's `--test DIR` also runs every .js file under a "test" folder,
// helpers included; listing the test files keeps helpers out.)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['build/test'];
const files = roots.flatMap((r) => (r.endsWith('.js') ? [r] : find(r))).sort();
// Two files at a time, whatever the cores (Node's default is one fewer than the cores, so one on two cores):
// most of a test's time is spent waiting on qemu-img and on the disk, and on two cores the suite takes ~55% as
// long. Not more: the heavy files (kill points, hostile images) then compete with each other, and the run
// stops being the one measured on this machine.
const concurrency = Math.min(2, Math.max(1, availableParallelism()));
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
