/**
 * resize against qemu-img: the same resize run by both on copies of one
 * image gives the same virtual size (qemu-img info), a clean check and
 * identical content (qemu-img compare), for qcow2 (cluster sizes, extended
 * L2, snapshots, preallocation) and raw; messages and exit codes as 7.2.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-resize-');
after(() => dir.cleanup());
const cwd = dir.path;

function virtualSize(image: string): number {
  return (JSON.parse(qemuImgOk(['info', '--output=json', image])) as { 'virtual-size': number })['virtual-size'];
}

function checkOutput(image: string): string {
  const r = qemuImg(['check', image]);
  assert.equal(r.status, 0, `qemu-img check ${image}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Runs the same resize steps with qemu-img and vdisk on copies of `image`; compares every result. */
function sameAsQemu(name: string, image: string, steps: readonly (readonly string[])[], format = 'qcow2'): void {
  const q = join(cwd, `${name}-q`);
  const v = join(cwd, `${name}-v`);
  copyFileSync(image, q);
  copyFileSync(image, v);
  for (const step of steps) {
    const qr = qemuImg(['resize', '-f', format, q, ...step]);
    const vr = vdisk(['resize', '-f', format, v, ...step], { cwd });
    assert.equal(vr.status, qr.status ?? -1, `${step.join(' ')}: ${vr.stderr}`);
    assert.equal(vr.stderr, asVdisk(qr.stderr), step.join(' '));
    assert.equal(vr.stdout, qr.stdout, step.join(' '));
    assert.equal(virtualSize(v), virtualSize(q), step.join(' '));
    if (format === 'qcow2') {
      const vc = checkOutput(v);
      const qc = checkOutput(q);
      // Allocated cluster counts agree too, and so does where the image ends (a shrink frees refcount blocks and trims as qemu's).
      const counts = (out: string): string => /^(\d+\/\d+) = /m.exec(out)?.[1] ?? out;
      assert.equal(counts(vc), counts(qc), step.join(' '));
      const end = (out: string): string => /^Image end offset: (\d+)/m.exec(out)?.[1] ?? out;
      assert.equal(end(vc), end(qc), `${step.join(' ')}: image end offset`);
    }
    const cmp = qemuImg(['compare', '-f', format, '-F', format, q, v]);
    assert.equal(cmp.status, 0, `${step.join(' ')}: ${cmp.stdout}`);
  }
}

const QCOW2_CASES: readonly { label: string; options: string; small?: boolean }[] = [
  { label: '64k clusters', options: 'cluster_size=65536' },
  { label: '4k clusters, refcount_bits=64', options: 'cluster_size=4096,refcount_bits=64' },
  { label: '16k clusters, extended L2', options: 'cluster_size=16384,extended_l2=on' },
  { label: '512-byte clusters, compat=0.10', options: 'cluster_size=512,compat=0.10', small: true },
];

describe('resize qcow2 like qemu-img', () => {
  for (const c of QCOW2_CASES) {
    it(`grows and shrinks (${c.label})`, (t) => {
      if (!requireQemu(t)) return;
      const image = join(cwd, `base-${c.options}.qcow2`);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', c.options, image, '64M']);
      qemuIo(image, ['write -P 1 0 1M', 'write -P 2 60M 1M', 'write -P 3 33M 100k', 'write -c -P 4 40M 64k', 'write -z 50M 2M'], 'qcow2');
      // qemu-img discards cluster by cluster: keep the shrunk ranges small with 512-byte clusters.
      const steps = c.small
        ? [['+8M'], ['+512'], ['--shrink', '62M'], ['--shrink', '-1M'], ['+2M']]
        : [['+1G'], ['+512'], ['--shrink', '32M'], ['--shrink', '-1M'], ['2G'], ['--shrink', '1000k']];
      sameAsQemu(`grow-${c.options}`, image, steps);
    });
  }

  it('shrinks and grows an image with snapshots; applying them restores their size', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'snap.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', image, '64M']);
    qemuIo(image, ['write -P 1 0 1M', 'write -P 2 60M 1M'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 's1', image]);
    qemuIo(image, ['write -P 3 61M 64k'], 'qcow2');
    sameAsQemu('snap', image, [['--shrink', '2M'], ['+100M']]);
    for (const who of ['q', 'v']) {
      const path = join(cwd, `snap-${who}`);
      qemuImgOk(['snapshot', '-a', 's1', path]);
      assert.equal(virtualSize(path), 64 * 1024 * 1024);
      checkOutput(path);
    }
    assert.equal(qemuImg(['compare', join(cwd, 'snap-q'), join(cwd, 'snap-v')]).status, 0);
  });

  it('preallocation modes give the same content and a clean image', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'pre.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', image, '1M']);
    qemuIo(image, ['write -P 5 0 512k'], 'qcow2');
    for (const mode of ['off', 'metadata', 'falloc', 'full']) {
      const v = join(cwd, `pre-${mode}.qcow2`);
      copyFileSync(image, v);
      const r = vdisk(['resize', `--preallocation=${mode}`, v, '+3M'], { cwd });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'Image resized.\n');
      checkOutput(v);
      assert.equal(virtualSize(v), 4 * 1024 * 1024);
      assert.equal(qemuImg(['compare', image, v]).status, 0, mode);
    }
  });
});

describe('resize messages and exit codes as qemu-img 7.2', () => {
  const steps: readonly (readonly string[])[] = [
    ['32M'],
    ['--', '-2G'],
    ['0'],
    ['--shrink', '1000'],
    ['--preallocation=bad', '+1M'],
    ['--shrink', '--preallocation=full', '1M'],
    ['foo'],
    ['12Q'],
    ['+1234567'],
    ['-1M'],
    ['-q', '+1M'],
    ['+0'],
  ];
  it('qcow2', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'msg.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', image, '64M']);
    sameAsQemu('msg', image, steps);
  });

  it('raw, with preallocation', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'msg.raw');
    qemuImgOk(['create', '-q', '-f', 'raw', image, '1M']);
    sameAsQemu('raw', image, [['+1M'], ['--preallocation=falloc', '+1M'], ['--preallocation=full', '+1M'], ['--preallocation=metadata', '+1M'], ['--shrink', '512k'], ['1M']], 'raw');
  });

  it('formats without resize, usage errors', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'v.vmdk');
    qemuImgOk(['create', '-q', '-f', 'vmdk', image, '1M']);
    for (const args of [[image, '+1M'], [], [image], [image, '1G', '2G']]) {
      const q = qemuImg(['resize', ...args]);
      const v = vdisk(['resize', ...args], { cwd });
      assert.equal(v.status, q.status ?? -1, args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
    }
  });
});
