/**
 * convert across formats and qcow2 variants, checked by qemu-img: every
 * output compares equal to its source and checks clean; -S 0, -B, -n, -c
 * (zlib and zstd) and same-file refusal behave as qemu-img's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

function ok(args: string[]): void {
  const r = vdisk(args, { cwd });
  assert.equal(r.status, 0, `vdisk ${args.join(' ')}: ${r.stderr}`);
}

function sameContent(a: string, b: string): void {
  const r = qemuImg(['compare', a, b], { cwd });
  assert.equal(r.status, 0, `compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

function checkClean(file: string): void {
  const r = qemuImg(['check', '--output=json', file], { cwd });
  assert.equal(r.status, 0, `check ${file}: ${r.stdout}${r.stderr}`);
}

const TARGETS: [string, string[]][] = [
  ['raw', []],
  ['qcow2', []],
  ['qcow2', ['-o', 'compat=0.10']],
  ['qcow2', ['-o', 'cluster_size=4096,refcount_bits=1']],
  ['qcow2', ['-o', 'cluster_size=2M,refcount_bits=64']],
  ['qcow2', ['-o', 'extended_l2=on,cluster_size=32k']],
  ['qcow2', ['-o', 'lazy_refcounts=on']],
  ['qcow2', ['-o', 'preallocation=metadata']],
  ['vmdk', []],
  ['vmdk', ['-o', 'subformat=streamOptimized']],
  ['vpc', []],
  ['vhdx', []],
  ['vdi', []],
];
const CHECKED = new Set(['qcow2', 'vmdk', 'vhdx', 'vdi']);

describe('convert across formats', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'base.qcow2', '24M'], { cwd });
    qemuIo(join(cwd, 'base.qcow2'), ['write -P 0x11 0 3M', 'write -P 0x22 7M 64k', 'write -z 9M 1M'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
    qemuIo(join(cwd, 'top.qcow2'), ['write -P 0x33 1M 100k', 'write -z 2M 64k', 'discard 7M 64k', 'write -P 0x44 20M 4k'], 'qcow2');
    qemuImgOk(['convert', '-O', 'raw', 'top.qcow2', 'top.raw'], { cwd });
  });

  for (const [fmt, opts] of TARGETS) {
    const name = `out-${fmt}${opts.join('').replace(/[^a-z0-9]/gi, '')}.img`;
    it(`qcow2 chain → ${fmt} ${opts.join(' ')} compares equal and checks clean, and reads back`, (t) => {
      if (!requireQemu(t)) return;
      ok(['convert', '-O', fmt, ...opts, 'top.qcow2', name]);
      sameContent('top.raw', name);
      if (CHECKED.has(fmt)) checkClean(name);
      ok(['convert', '-O', 'raw', name, `${name}.back.raw`]);
      // vpc rounds the size up to whole CHS geometry: the extra tail reads as zeros
      const back = readFileSync(join(cwd, `${name}.back.raw`));
      const src = readFileSync(join(cwd, 'top.raw'));
      assert.ok(back.subarray(0, src.length).equals(src));
      assert.ok(back.subarray(src.length).every((b) => b === 0));
    });
  }

  for (const type of ['zlib', 'zstd']) {
    it(`-c with compression_type=${type} writes compressed clusters`, (t) => {
      if (!requireQemu(t)) return;
      ok(['convert', '-c', '-O', 'qcow2', '-o', `compression_type=${type}`, 'top.qcow2', `c-${type}.qcow2`]);
      sameContent('top.raw', `c-${type}.qcow2`);
      const check = JSON.parse(qemuImgOk(['check', '--output=json', `c-${type}.qcow2`], { cwd })) as Record<string, number>;
      assert.ok((check['compressed-clusters'] ?? 0) > 0);
    });
  }

  it('-S 0 allocates everything', (t) => {
    if (!requireQemu(t)) return;
    ok(['convert', '-S', '0', '-O', 'qcow2', 'top.qcow2', 'full.qcow2']);
    const check = JSON.parse(qemuImgOk(['check', '--output=json', 'full.qcow2'], { cwd })) as Record<string, number>;
    assert.equal(check['allocated-clusters'], check['total-clusters']);
    sameContent('top.raw', 'full.qcow2');
  });

  it('-B copies only the top layer and equals the source with the new backing file', (t) => {
    if (!requireQemu(t)) return;
    ok(['convert', '-O', 'qcow2', '-B', 'base.qcow2', '-F', 'qcow2', 'top.qcow2', 'thin.qcow2']);
    ok(['convert', '-O', 'qcow2', 'top.qcow2', 'thick.qcow2']);
    assert.ok(readFileSync(join(cwd, 'thin.qcow2')).length < readFileSync(join(cwd, 'thick.qcow2')).length);
    sameContent('top.raw', 'thin.qcow2');
    checkClean('thin.qcow2');
    assert.match(qemuImgOk(['info', 'thin.qcow2'], { cwd }), /backing file: base\.qcow2\nbacking file format: qcow2/);
  });

  it('-n writes into an existing target', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'existing.qcow2', '24M'], { cwd });
    qemuIo(join(cwd, 'existing.qcow2'), ['write -P 0x77 0 24M'], 'qcow2');
    ok(['convert', '-n', '-O', 'qcow2', 'top.qcow2', 'existing.qcow2']);
    sameContent('top.raw', 'existing.qcow2');
    checkClean('existing.qcow2');
  });

  it('refuses to overwrite a source or its backing file, leaving both unchanged', (t) => {
    if (!requireQemu(t)) return;
    const before = [readFileSync(join(cwd, 'top.qcow2')), readFileSync(join(cwd, 'base.qcow2'))];
    for (const target of ['top.qcow2', './top.qcow2', 'base.qcow2']) {
      const r = vdisk(['convert', '-O', 'qcow2', 'top.qcow2', target], { cwd });
      assert.equal(r.status, 1);
      // qemu-img's image locks refuse it, with this message
      assert.equal(r.stderr, `vdisk: ${target}: error while converting qcow2: Failed to get "write" lock\nIs another process using the image [${target}]?\n`);
    }
    assert.ok(readFileSync(join(cwd, 'top.qcow2')).equals(before[0]!));
    assert.ok(readFileSync(join(cwd, 'base.qcow2')).equals(before[1]!));
  });
});
