/**
 * What a plain convert into a file loads: not the stdout writer's machinery
 * (node:tty with node:net, the archive presets with node:crypto and
 * node:zlib), and not node:crypto for the temporary file's name. Each is a
 * share of every convert's start-up.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI_DIR = fileURLToPath(new URL('../../../src/cli/', import.meta.url));
const LAUNCHER = join(CLI_DIR, 'vdisk.cjs');

// Inside build/src, so that the bundle finds the package (native module, node_modules) as in place.
const work = mkdtempSync(join(CLI_DIR, '..', '.copy2-startup-'));
after(() => rmSync(work, { recursive: true, force: true }));

const UNWANTED = ['crypto', 'tty', 'net', 'zlib'];

function loadedBy(args: readonly string[]): string[] {
  const probe = join(work, 'probe.mjs');
  writeFileSync(probe, `process.on('exit', () => {
  const mods = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  process.stderr.write(JSON.stringify(mods));
});\n`);
  const r = spawnSync(process.execPath, ['--import', probe, LAUNCHER, ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const mods = JSON.parse(r.stderr) as string[];
  return UNWANTED.filter((m) => mods.includes(m));
}

describe('convert into a file', () => {
  const raw = join(work, 'src.raw');
  writeFileSync(raw, new Uint8Array(1024 * 1024).fill(0x5a));
  truncateSync(raw, 4 * 1024 * 1024);

  it('raw → qcow2 loads none of node:crypto, node:tty, node:net, node:zlib', () => {
    assert.deepEqual(loadedBy(['convert', '-f', 'raw', '-O', 'qcow2', raw, join(work, 'out.qcow2')]), []);
  });

  it('qcow2 → raw loads none of them either', () => {
    assert.deepEqual(loadedBy(['convert', '-f', 'raw', '-O', 'qcow2', raw, join(work, 'mid.qcow2')]), []);
    assert.deepEqual(loadedBy(['convert', '-f', 'qcow2', '-O', 'raw', join(work, 'mid.qcow2'), join(work, 'out.raw')]), []);
  });
});
