/**
 * dd and bench against qemu-img: dd outputs byte-identical across bs,
 * count and skip (edge cases and messages included); bench's summary
 * lines and validation messages, and a pattern write read back by qemu-io.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

describe('dd equals qemu-img dd', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'in.raw', '10000'], { cwd });
    qemuIo(join(cwd, 'in.raw'), ['write -P 7 0 10000', 'write -P 9 3000 2000'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'in.qcow2', '300k'], { cwd });
    qemuIo(join(cwd, 'in.qcow2'), ['write -P 1 5000 70000', 'write -z 100k 8k', 'write -c -P 3 200k 4k'], 'qcow2');
  });

  const CASES: string[][] = [
    [],
    ['bs=1k', 'count=1000'],
    ['skip=19'],
    ['skip=20'],
    ['skip=100'],
    ['bs=1', 'count=5'],
    ['bs=3000', 'skip=1'],
    ['bs=4k', 'count=2', 'skip=1'],
    ['bs=7', 'count=3', 'skip=2'],
    ['count=0'],
    ['-O', 'qcow2', 'bs=3000', 'skip=1'],
    ['-O', 'qcow2', 'bs=4k'],
    ['-O', 'vpc'],
    ['-O', 'foo'],
    ['bs=0'],
    ['bs=3G'],
    ['bs=x'],
    ['foo=1'],
    ['foo'],
    ['count=-1'],
  ];

  for (const input of ['in.raw', 'in.qcow2']) {
    it(`byte-identical outputs and the same messages (${input})`, (t) => {
      if (!requireQemu(t)) return;
      // Operand errors do not depend on the input: check them once.
      for (const args of input === 'in.raw' ? CASES : CASES.slice(0, 14)) {
        for (const f of ['q.out', 'v.out']) rmSync(join(cwd, f), { force: true });
        const q = qemuImg(['dd', ...args, `if=${input}`, 'of=q.out'], { cwd });
        const v = vdisk(['dd', ...args, `if=${input}`, 'of=v.out'], { cwd });
        const what = `${input} ${args.join(' ')}`;
        assert.equal(v.status, q.status, what);
        assert.equal(v.stdout, q.stdout, what);
        assert.equal(v.stderr, asVdisk(q.stderr), what);
        if (q.status !== 0) continue;
        // vpc footers carry a timestamp and a random UUID: compare content there, bytes elsewhere.
        if (args.includes('vpc')) assert.equal(qemuImg(['compare', '-f', 'vpc', '-F', 'vpc', 'q.out', 'v.out'], { cwd }).status, 0, what);
        else assert.ok(readFileSync(join(cwd, 'q.out')).equals(readFileSync(join(cwd, 'v.out'))), `${what}: outputs differ`);
      }
    });
  }

  it('missing operands and unknown input', (t) => {
    if (!requireQemu(t)) return;
    for (const args of [['if=in.raw'], ['of=x'], ['if=nope', 'of=x'], ['-x', 'if=in.raw', 'of=x']]) {
      const q = qemuImg(['dd', ...args], { cwd });
      const v = vdisk(['dd', ...args], { cwd });
      assert.equal(v.status, q.status, args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
    }
  });
});

describe('bench prints what qemu-img bench prints', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '10M'], { cwd });
  });
  const timing = (s: string): string => s.replace(/in \d+\.\d{3} seconds/, 'in X seconds');

  it('summary lines and validation messages', (t) => {
    if (!requireQemu(t)) return;
    const cases = [
      ['-c', '100'],
      ['-c', '10', '-d', '2', '-w', '--flush-interval=3'],
      ['-c', '0', '-w', '--pattern=0x41', '--flush-interval=64'],
      ['-c', '3', '-S', '4M', '-s', '1M', '-o', '1k'],
      ['-q', '-c', '10', '-i', 'threads'],
      ['-c', 'x'],
      ['-c', '-1'],
      ['-d', '3000000000'],
      ['--pattern=256'],
      ['--flush-interval=5'],
      ['-w', '--flush-interval=5'],
      ['-s', '3G'],
      ['-S', '-1'],
      ['-t', 'foo'],
      ['-i', 'foo'],
      ['-o', '1x'],
    ];
    for (const args of cases) {
      const q = qemuImg(['bench', ...args, 'b.qcow2'], { cwd });
      const v = vdisk(['bench', ...args, 'b.qcow2'], { cwd });
      assert.equal(v.status, q.status, args.join(' '));
      assert.equal(timing(v.stdout), timing(q.stdout), args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
    }
  });

  it('a request past the end fails as qemu-img says', (t) => {
    if (!requireQemu(t)) return;
    const v = vdisk(['bench', '-c', '5', '-o', '9M', '-s', '2M', 'b.qcow2'], { cwd });
    assert.equal(v.status, 1);
    assert.equal(v.stdout, 'Sending 5 read requests, 2097152 bytes each, 64 in parallel (starting at offset 9437184, step size 2097152)\n');
    assert.equal(v.stderr, 'vdisk: Failed request: Input/output error\n');
  });

  it('bench -w --pattern writes the pattern qemu-io reads back', (t) => {
    if (!requireQemu(t)) return;
    const v = vdisk(['bench', '-w', '--pattern=0x5a', '-c', '100', '-s', '64k', '-o', '1M', '-d', '8', 'b.qcow2'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    const r = qemuIo(join(cwd, 'b.qcow2'), ['read -P 0x5a 1M 6400k', 'read -P 0 0 1M'], 'qcow2');
    assert.doesNotMatch(r.stdout, /Pattern verification failed/);
    assert.match(qemuImgOk(['check', 'b.qcow2'], { cwd }), /No errors were found/);
  });
});
