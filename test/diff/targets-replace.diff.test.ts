/**
 * A job's target is never replaced under another writer,
 * and jobs never share a temporary file. convert, create and dd refuse a
 * target qemu-io writes, as qemu-img does; two converts to one target in
 * one process give one success whose content is its own and one VdiskError
 * (with and without the native module); a planted temporary name is not
 * followed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { convert } from '../../src/index.js';
import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, hasQemuIo, qemuImg, qemuImgOk, tmpDir } from '../helpers/qemu.js';
import { holdWithQemuIo } from '../helpers/targets-hold.js';

const dir = tmpDir('vdisk-targets-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);
const INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));

/** Temporary files a job left beside its targets. */
const leftovers = (): string[] => readdirSync(cwd).filter((n) => n.includes('.vdisk-'));

function pattern(name: string, byte: number): void {
  writeFileSync(at(name), Buffer.alloc(1024 * 1024, byte));
}

describe('a target another process writes is not replaced', { skip: hasQemu && hasQemuIo && native ? false : 'needs qemu-img, qemu-io and the native module' }, () => {
  const cases: readonly (readonly [string, readonly string[]])[] = [
    ['convert', ['convert', '-O', 'qcow2', 's.raw', 'held.qcow2']],
    ['convert to raw', ['convert', '-O', 'raw', 's.raw', 'held.qcow2']],
    ['create', ['create', '-f', 'qcow2', 'held.qcow2', '1M']],
    ['dd', ['dd', '-O', 'qcow2', 'if=s.raw', 'of=held.qcow2']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: fails as qemu-img does, and the writer's file stays in place`, async () => {
      pattern('s.raw', 0x5a);
      qemuImgOk(['create', '-q', '-f', 'qcow2', 'held.qcow2', '1M'], { cwd });
      const holder = await holdWithQemuIo('held.qcow2', cwd);
      try {
        const before = statSync(at('held.qcow2'));
        const content = readFileSync(at('held.qcow2'));
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(q.status, 1, q.stderr);
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stdout, q.stdout);
        assert.equal(r.stderr, asVdisk(q.stderr));
        const now = statSync(at('held.qcow2'));
        assert.equal(now.ino, before.ino, 'the held file is still the target');
        assert.ok(readFileSync(at('held.qcow2')).equals(content), 'the held file is unchanged');
        assert.deepEqual(leftovers(), []);
      } finally {
        await holder.release();
      }
    });
  }

  it('an in-place (multi-file) target: fails as qemu-img does', async () => {
    pattern('s.raw', 0x5a);
    qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'held.vmdk', '1M'], { cwd });
    const holder = await holdWithQemuIo('held.vmdk', cwd, 'vmdk');
    try {
      const [descriptor, extent] = [readFileSync(at('held.vmdk')), readFileSync(at('held-flat.vmdk'))];
      const args = ['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', 's.raw', 'held.vmdk'];
      const q = qemuImg(args, { cwd });
      const r = vdisk(args, { cwd });
      assert.equal(q.status, 1, q.stderr);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, asVdisk(q.stderr));
      assert.ok(readFileSync(at('held.vmdk')).equals(descriptor), 'the held descriptor is unchanged');
      assert.ok(readFileSync(at('held-flat.vmdk')).equals(extent), 'the held extent is unchanged');
    } finally {
      await holder.release();
    }
  });
});

describe('dd onto its own input', { skip: hasQemu && native ? false : 'needs qemu-img and the native module' }, () => {
  it('is refused or done as qemu-img decides (its locks), and a raw input keeps its content', () => {
    pattern('self.raw', 0x5a);
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'self.qcow2', '1M'], { cwd });
    for (const args of [
      ['dd', '-O', 'raw', 'if=self.raw', 'of=self.raw'],
      ['dd', '-f', 'qcow2', '-O', 'qcow2', 'if=self.qcow2', 'of=self.qcow2'],
    ]) {
      const r = vdisk(args, { cwd });
      // vdisk writes the copy under a temporary name (qemu-img empties its input before reading it).
      if (args[2] === 'if=self.raw') assert.ok(readFileSync(at('self.raw')).equals(Buffer.alloc(1024 * 1024, 0x5a)), 'the input is intact');
      const q = qemuImg(args, { cwd });
      assert.equal(r.status, q.status, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, asVdisk(q.stderr));
    }
  });
});

/** Two converts of different sources to one target, in one process; what each job saw, and the target's content. */
const TWO_JOBS = `
const { convert, VdiskError } = await import(process.argv[1]);
const results = await Promise.allSettled(['a.raw', 'b.raw'].map((s) => convert(s, 't.raw', { targetFormat: 'raw' })));
console.log(JSON.stringify(results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason instanceof VdiskError ? 'VdiskError: ' + r.reason.message : 'other: ' + String(r.reason)))));
`;

describe('two converts to one target in one process', () => {
  for (const mode of ['with the native module', 'without the native module'] as const) {
    it(`one succeeds with its own content, the other fails with a VdiskError (${mode})`, (t) => {
      if (mode === 'with the native module' && !native) return t.skip('native module not built');
      pattern('a.raw', 0xaa);
      pattern('b.raw', 0xbb);
      for (const existing of [false, true]) {
        if (existing) pattern('t.raw', 0x11);
        else spawnSync('rm', ['-f', at('t.raw')]);
        const env = { ...process.env, ...(mode === 'without the native module' ? { VDISK_NO_NATIVE: '1' } : {}) };
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', TWO_JOBS, INDEX], { cwd, env, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const outcomes = JSON.parse(r.stdout) as string[];
        for (const o of outcomes) assert.match(o, /^(ok|VdiskError: )/, `every failure is a VdiskError: ${o}`);
        const winners = outcomes.flatMap((o, i) => (o === 'ok' ? [i] : []));
        // Without locks an existing target may not be replaced at all: then neither job succeeds.
        if (!(existing && mode === 'without the native module')) assert.equal(winners.length, 1, outcomes.join('; '));
        for (const w of winners) {
          assert.ok(readFileSync(at('t.raw')).equals(readFileSync(at(w === 0 ? 'a.raw' : 'b.raw'))), `the target holds job ${w}'s content`);
        }
        if (winners.length === 0) assert.ok(readFileSync(at('t.raw')).equals(Buffer.alloc(1024 * 1024, 0x11)), 'the old target is untouched');
        assert.deepEqual(leftovers(), []);
      }
    });
  }

  it('a file planted under the old temporary name is neither followed nor removed', async () => {
    pattern('a.raw', 0xaa);
    writeFileSync(at('victim'), 'not yours');
    const planted = `.planted.raw.vdisk-${process.pid}`;
    symlinkSync(at('victim'), at(planted));
    await convert(at('a.raw'), at('planted.raw'), { targetFormat: 'raw' });
    assert.equal(readFileSync(at('victim'), 'utf8'), 'not yours');
    assert.ok(readFileSync(at('planted.raw')).equals(readFileSync(at('a.raw'))));
    assert.ok(statSync(at(planted)).isFile(), 'the planted name is still there');
    spawnSync('rm', ['-f', at(planted), at('victim')]);
  });
});
