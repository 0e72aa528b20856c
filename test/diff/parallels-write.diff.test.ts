/**
 * Writing parallels images: `create` with every option qemu-img 7.2 lists
 * (and its refusals), `convert -O parallels` (clusters placed as QEMU
 * places them: the files are byte-identical), writes into an existing
 * image, and the commands qemu-img refuses for the format (commit into a
 * parallels base: its driver cannot reopen read/write).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSame, both } from './parallels-kit.js';

const dir = tmpDir('vdisk-parallels-write-');
const src = join(dir.path, 'src');
after(() => dir.cleanup());
before(() => {
  mkdirSync(src);
  try {
    qemuImgOk(['create', '-q', '-f', 'raw', join(src, 's.raw'), '20M']);
    qemuIo(join(src, 's.raw'), ['write -P 0x11 0 100k', 'write -P 0x22 5M 3M', 'write -P 0x33 19M 1M', 'write -P 0x44 10M 4k'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'parallels', '-o', 'cluster_size=64k', join(src, 'p.prl'), '20M']);
    qemuIo(join(src, 'p.prl'), ['write -P 0x55 1M 4k', 'write -P 0x66 0 512'], 'parallels');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'p.prl', '-F', 'parallels', join(src, 'top.qcow2')]);
    qemuIo(join(src, 'top.qcow2'), ['write -P 0x77 2M 8k'], 'qcow2');
  } catch {
    // no qemu: the tests skip
  }
});

describe('create -f parallels', () => {
  const cases = [['0'], ['1'], ['1000001'], ['-o', 'cluster_size=3000', '1M'], ['-o', 'cluster_size=64k', '100M'], ['-o', 'cluster_size=512', '1G'], ['-o', 'cluster_size=4M', '3G'], ['-o', 'preallocation=full', '3M']];
  for (const c of cases) {
    it(`${c.join(' ')}: same output, byte-identical file`, (t) => {
      if (!requireQemu(t)) return;
      const d = join(dir.path, `c-${c.join('_')}`);
      mkdirSync(d);
      assertSame(d, ['create', '-f', 'parallels', 'n.prl', ...c]);
    });
  }

  for (const [opts, size, message] of [
    ['cluster_size=0', '1M', 'Image size is too large for this cluster size'],
    ['cluster_size=512', '3T', 'Image size is too large for this cluster size'],
    ['cluster_size=2147483136', '1M', undefined],
    ['cluster_size=2147483648', '1M', 'Cluster size is too large'],
    ['cluster_size=1P', '1M', 'Cluster size is too large'],
  ] as const) {
    it(`-o ${opts} ${size}: ${message ?? 'accepted'}, as qemu-img`, (t) => {
      if (!requireQemu(t)) return;
      const d = join(dir.path, `e-${opts}-${size}`);
      mkdirSync(d);
      const r = both(d, ['create', '-f', 'parallels', '-o', opts, 'n.prl', size]);
      assert.equal(r.vdisk.stdout, r.qemu.stdout);
      assert.equal(r.vdisk.stderr, r.qemu.stderr);
      assert.equal(r.vdisk.status, r.qemu.status);
      if (message) assert.equal(r.vdisk.stderr, `vdisk: n.prl: ${message}\n`);
    });
  }

  it('-o help lists what qemu-img lists', (t) => {
    if (!requireQemu(t)) return;
    assert.equal(vdisk(['create', '-f', 'parallels', '-o', 'help']).stdout, qemuImgOk(['create', '-f', 'parallels', '-o', 'help']));
  });
});

describe('convert -O parallels', () => {
  for (const opts of [[], ['-o', 'cluster_size=64k'], ['-o', 'cluster_size=3000'], ['-o', 'cluster_size=4M'], ['-S', '0']]) {
    it(`${opts.join(' ') || 'defaults'}: byte-identical to qemu-img's, passes its check and compare`, (t) => {
      if (!requireQemu(t)) return;
      const q = join(dir.path, `q${opts.join('')}.prl`);
      const v = join(dir.path, `v${opts.join('')}.prl`);
      qemuImgOk(['convert', '-O', 'parallels', ...opts, join(src, 's.raw'), q]);
      const r = vdisk(['convert', '-O', 'parallels', ...opts, join(src, 's.raw'), v]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(readFileSync(v).equals(readFileSync(q)));
      assert.equal(qemuImg(['check', v]).status, 0);
      assert.equal(qemuImgOk(['compare', join(src, 's.raw'), v]), 'Images are identical.\n');
    });
  }

  it('a parallels image converts to qcow2 and raw as qemu-img converts it', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-O', 'raw', join(src, 'p.prl'), join(dir.path, 'p.q.raw')]);
    assert.equal(vdisk(['convert', '-O', 'raw', join(src, 'p.prl'), join(dir.path, 'p.v.raw')]).status, 0);
    assert.ok(readFileSync(join(dir.path, 'p.v.raw')).equals(readFileSync(join(dir.path, 'p.q.raw'))));
    assert.equal(vdisk(['convert', '-O', 'qcow2', join(src, 'p.prl'), join(dir.path, 'p.qcow2')]).status, 0);
    assert.equal(qemuImgOk(['compare', join(src, 'p.prl'), join(dir.path, 'p.qcow2')]), 'Images are identical.\n');
  });
});

describe('writing into an existing parallels image', () => {
  for (const args of [
    ['convert', '-n', '-O', 'parallels', 's.raw', 'p.prl'],
    ['dd', 'if=s.raw', 'of=p.prl', '-O', 'parallels', 'bs=64k', 'count=40'],
    ['convert', '-n', '-O', 'parallels', '--image-opts', 'driver=raw,file.filename=s.raw', '--target-image-opts', 'driver=parallels,file.filename=p.prl,prealloc-mode=truncate,prealloc-size=1k'],
  ]) {
    it(`${args.join(' ')}: same output, byte-identical image (inuse cleared, file cut at the data end)`, (t) => {
      if (!requireQemu(t)) return;
      assertSame(src, args);
    });
  }
});

describe('what qemu-img refuses for parallels', () => {
  for (const args of [
    ['resize', 'p.prl', '30M'],
    ['amend', '-o', 'cluster_size=4k', 'p.prl'],
    ['snapshot', '-c', 'x', 'p.prl'],
    ['commit', 'p.prl'],
    ['rebase', '-b', 's.raw', 'p.prl'],
    ['rebase', '-u', '-b', 's.raw', '-F', 'raw', 'p.prl'],
    ['measure', '-O', 'parallels', 'p.prl'],
    ['bitmap', '--add', 'p.prl', 'b'],
    ['commit', 'top.qcow2'],
    ['commit', '-b', 'p.prl', 'top.qcow2'],
    ['info', '--image-opts', 'driver=parallels,file.filename=p.prl,prealloc-mode=bogus'],
    ['info', '--image-opts', 'driver=parallels,file.filename=p.prl,prealloc-size=abc'],
  ]) {
    it(`${args.join(' ')}: same refusal`, (t) => {
      if (!requireQemu(t)) return;
      const r = both(src, args);
      // qemu names its internal node where vdisk names the file (deliberate: node-names)
      assert.equal(r.vdisk.stderr.replace(/#block\d+/, 'p.prl'), r.qemu.stderr.replace(/#block\d+/, 'p.prl'));
      assert.equal(r.vdisk.status, r.qemu.status);
      for (const f of ['p.prl', 'top.qcow2']) assert.ok(readFileSync(join(r.vdir, f)).equals(readFileSync(join(r.qdir, f))), `${f} after ${args.join(' ')}`);
    });
  }
});
