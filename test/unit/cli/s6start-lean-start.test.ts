/**
 * A short command loads only the Node built-ins it needs: each one outside
 * Node's start-up snapshot is compiled when first required, and `vdisk info`
 * on a small image is mostly start-up, which should cost little more than `node -e 0`.
 * `perf_hooks` (the progress clock used to read `performance.now`) and
 * `node:v8` (the interrupt budget of long runs, with the streams it loads)
 * cost about as much as the command's own work.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI_DIR = fileURLToPath(new URL('../../../src/cli/', import.meta.url));
const LAUNCHER = join(CLI_DIR, 'vdisk.cjs');
const BIN_JS = join(CLI_DIR, 'bin.js');
const HEAVY = ['perf_hooks', 'v8'];

let work: string;
let image: string;
let probe: string;

before(() => {
  work = mkdtempSync(join(CLI_DIR, '..', '.s6start-test-'));
  image = join(work, 'empty.qcow2');
  const r = spawnSync(process.execPath, [BIN_JS, 'create', '-q', '-f', 'qcow2', image, '1G'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // Reports at exit which of HEAVY the run loaded (process.moduleLoadList: every built-in compiled so far).
  probe = join(work, 'probe.mjs');
  writeFileSync(probe, `process.on('exit', () => {
  const mods = new Set(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)));
  process.stderr.write('\\n' + JSON.stringify(${JSON.stringify(HEAVY)}.filter((m) => mods.has(m))));
});\n`);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** The heavy built-ins `vdisk args` loaded, run as `entry` (the installed launcher or bin.js). */
function heavyLoaded(entry: string, args: readonly string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', probe, entry, ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stderr.slice(r.stderr.lastIndexOf('\n') + 1)) as string[];
}

describe('a short command', () => {
  for (const [name, entry] of [['the installed launcher', LAUNCHER], ['bin.js unbundled', BIN_JS]] as const) {
    it(`info loads neither perf_hooks nor node:v8 (${name})`, () => {
      assert.deepEqual(heavyLoaded(entry, ['info', image]), []);
      assert.deepEqual(heavyLoaded(entry, ['info', '--output=json', image]), []);
    });
  }

  it('--version loads neither', () => {
    assert.deepEqual(heavyLoaded(LAUNCHER, ['--version']), []);
  });
});
