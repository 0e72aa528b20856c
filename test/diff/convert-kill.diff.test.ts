/**
 * Killing convert: SIGKILL at seeded moments leaves the source unchanged and
 * nothing at the target's name; SIGINT aborts cleanly; a second convert succeeds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { VDISK_BIN, vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const SIZE = 48 * 1024 * 1024;

function makeSource(): string {
  const b = Buffer.alloc(SIZE);
  const next = rng(11);
  for (let i = 0; i < SIZE; i += 65536) if (next() < 0.7) b.fill(Math.floor(next() * 255) + 1, i, i + 65536);
  writeFileSync(join(cwd, 'src.raw'), b);
  return createHash('sha256').update(b).digest('hex');
}

function run(args: string[], killAfterMs: number, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VDISK_BIN, ...args], { cwd, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill(signal), killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('interrupted convert', () => {
  const digest = makeSource();
  const sha = (): string => createHash('sha256').update(readFileSync(join(cwd, 'src.raw'))).digest('hex');

  for (const format of ['raw', 'qcow2']) {
    it(`SIGKILL at seeded points leaves no ${format} target and an intact source`, async () => {
      const next = rng(format.length);
      for (let i = 0; i < 4; i++) {
        const at = 60 + Math.floor(next() * 400);
        const code = await run(['convert', '-O', format, 'src.raw', 'out.img'], at, 'SIGKILL');
        if (code === 0) {
          rmSync(join(cwd, 'out.img')); // finished before the kill: fine, try the next point
          continue;
        }
        if (existsSync(join(cwd, 'out.img'))) {
          // killed after the rename: the target must then be complete
          const r = qemuImg(['compare', '-f', 'raw', '-F', format, 'src.raw', 'out.img'], { cwd });
          assert.equal(r.status, 0, `kill after ${at} ms left an incomplete target: ${r.stdout}`);
          rmSync(join(cwd, 'out.img'));
        }
        for (const leftover of readdirSync(cwd).filter((n) => n.includes('.vdisk-'))) rmSync(join(cwd, leftover));
      }
      assert.equal(sha(), digest);
      const again = vdisk(['convert', '-O', format, 'src.raw', 'out.img'], { cwd });
      assert.equal(again.status, 0, again.stderr);
      rmSync(join(cwd, 'out.img'));
    });
  }

  it('SIGINT aborts like the API: no target, no temporary file, exit 1', async (t) => {
    // Wait for the first progress line, so the signal arrives while the copy runs.
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [VDISK_BIN, 'convert', '-p', '-r', '16M', '-O', 'raw', 'src.raw', 'int.img'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.once('data', () => child.kill('SIGINT'));
      child.on('exit', resolve);
    });
    if (code === 0) return t.skip('convert finished before the signal');
    assert.equal(code, 1);
    assert.equal(existsSync(join(cwd, 'int.img')), false);
    assert.deepEqual(readdirSync(cwd).filter((n) => n.includes('.vdisk-')), []);
  });

  it('the completed qcow2 output equals the source for qemu-img', (t) => {
    if (!requireQemu(t)) return;
    assert.equal(vdisk(['convert', '-O', 'qcow2', 'src.raw', 'done.qcow2'], { cwd }).status, 0);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', 'src.raw', 'done.qcow2'], { cwd }).status, 0);
    assert.equal(qemuImg(['check', 'done.qcow2'], { cwd }).status, 0);
  });
});
