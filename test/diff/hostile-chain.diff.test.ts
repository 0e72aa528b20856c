/**
 * Hostile backing chains made by qemu-img itself: a loop, a 300-deep chain,
 * a FIFO and a json: name as backing file. vdisk must end each with a
 * clear error, quickly, without opening the FIFO or what json: names.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const overlay = (name: string, backing: string, fmt = 'qcow2'): string =>
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', fmt, name, '1M'], { cwd });

function failsCleanly(args: string[], pattern: RegExp): void {
  const started = Date.now();
  const r = vdisk(args, { cwd, timeoutMs: 20_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.ok(Date.now() - started < 20_000);
}

describe('hostile backing chains end in clear errors', () => {
  it('a → b → a loop: the same message as qemu-img info --backing-chain, and convert writes nothing', (t) => {
    if (!requireQemu(t)) return;
    overlay('la.qcow2', 'lb.qcow2');
    overlay('lb.qcow2', 'la.qcow2');
    const theirs = qemuImg(['info', '--backing-chain', 'la.qcow2'], { cwd });
    const ours = vdisk(['info', '--backing-chain', 'la.qcow2'], { cwd });
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.stderr, asVdisk(theirs.stderr));
    failsCleanly(['convert', '-O', 'raw', 'la.qcow2', 'loop.raw'], /creates an infinite loop/);
    assert.equal(existsSync(join(cwd, 'loop.raw')), false);
  });

  it('a 300-deep chain hits the depth cap, and opens once the cap is raised', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'd0.qcow2', '1M'], { cwd });
    for (let i = 1; i <= 300; i++) overlay(`d${i}.qcow2`, `d${i - 1}.qcow2`);
    failsCleanly(['info', '--backing-chain', 'd300.qcow2'], /deeper than 256 images.*--max-chain-depth/);
    failsCleanly(['convert', '-O', 'raw', 'd300.qcow2', 'deep.raw'], /deeper than 256/);
    assert.equal(existsSync(join(cwd, 'deep.raw')), false);
    const ok = vdisk(['info', '--max-chain-depth=400', '--backing-chain', '--output=json', 'd300.qcow2'], { cwd });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as unknown[]).length, 301);
  });

  it('a FIFO as backing file is refused without being opened', (t) => {
    if (!requireQemu(t)) return;
    execFileSync('mkfifo', [join(cwd, 'pipe')]);
    overlay('fifo.qcow2', 'pipe', 'raw');
    failsCleanly(['info', '--backing-chain', 'fifo.qcow2'], /'file' driver requires 'pipe' to be a regular file/);
    failsCleanly(['convert', '-O', 'raw', 'fifo.qcow2', 'fifo.raw'], /'file' driver requires 'pipe' to be a regular file/);
    assert.equal(existsSync(join(cwd, 'fifo.raw')), false);
    // plain info does not open the backing file at all, as qemu-img
    assert.equal(vdisk(['info', 'fifo.qcow2'], { cwd }).status, 0);
  });

  it('a json: backing name is refused without opening what it names', (t) => {
    if (!requireQemu(t)) return;
    execFileSync('mkfifo', [join(cwd, 'json-target')]);
    const name = `json:{"driver":"raw","file":{"driver":"file","filename":"${join(cwd, 'json-target')}"}}`;
    overlay('json.qcow2', name, 'raw');
    failsCleanly(['info', '--backing-chain', 'json.qcow2'], /'json:' names are not followed/);
    failsCleanly(['convert', '-O', 'raw', 'json.qcow2', 'json.raw'], /'json:'/);
    assert.equal(existsSync(join(cwd, 'json.raw')), false);
  });

  it('untrusted mode refuses a backing file outside the image directory that qemu mode follows', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'outside.raw', '1M'], { cwd });
    execFileSync('mkdir', ['-p', join(cwd, 'up')]);
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', '../outside.raw', '-F', 'raw', 'up/in.qcow2', '1M'], { cwd });
    assert.equal(vdisk(['info', '--backing-chain', 'up/in.qcow2'], { cwd }).status, 0);
    failsCleanly(['info', '--untrusted', '--backing-chain', 'up/in.qcow2'], /outside .*untrusted/);
  });
});
