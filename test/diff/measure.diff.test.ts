/**
 * measure against qemu-img: raw and qcow2 sources (chains, zero writes,
 * discards, bitmaps) and --size, for raw and qcow2 targets across cluster
 * sizes, extended L2, compat and preallocation modes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { measure } from '../../src/jobs/measure.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

const TARGETS: string[] = ['raw'];
for (const cs of ['512', '4k', '64k', '2M']) {
  for (const ext of cs === '512' || cs === '4k' ? ['off'] : ['off', 'on']) {
    for (const pre of ['off', 'metadata', 'falloc', 'full']) TARGETS.push(`qcow2:cluster_size=${cs},extended_l2=${ext},preallocation=${pre}`);
  }
}
TARGETS.push('qcow2:compat=0.10', 'qcow2:refcount_bits=1', 'qcow2:refcount_bits=64,cluster_size=4k', 'qcow2:backing_file=x,backing_fmt=raw');

function qemuMeasure(args: readonly string[]): { required: number; 'fully-allocated': number; bitmaps?: number } {
  return JSON.parse(qemuImgOk(['measure', '--output=json', ...args], { cwd })) as { required: number; 'fully-allocated': number; bitmaps?: number };
}

function split(t: string): { format: string; options: string | undefined } {
  const [format, options] = t.split(':') as [string, string | undefined];
  return { format, options };
}

describe('measure equals qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'src.raw', '37M'], { cwd });
    qemuIo(`${cwd}/src.raw`, ['write -P 1 0 1M', 'write -P 2 5000 3000', 'write -P 3 20M 64k', 'write -z 30M 1M', 'write -P 4 36M 100k'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'base.qcow2', '37M'], { cwd });
    qemuIo(`${cwd}/base.qcow2`, ['write -P 1 0 512k', 'write -P 2 10M 70000'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
    qemuIo(`${cwd}/top.qcow2`, ['write -P 5 100k 8k', 'write -z 10M 64k', 'discard 1M 128k', 'write -P 6 33M 1M', 'write -c -P 7 35M 64k'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 'early', 'top.qcow2'], { cwd });
    qemuIo(`${cwd}/top.qcow2`, ['write -P 8 20M 3M', 'write -z 100k 4k'], 'qcow2');
    qemuImgOk(['bitmap', '--add', 'top.qcow2', 'b0'], { cwd });
    qemuImgOk(['bitmap', '--add', '-g', '512', 'top.qcow2', 'a-much-longer-bitmap-name'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '5M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', 'pre.qcow2', '9M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k', 'ext.qcow2', '9M'], { cwd });
    qemuIo(`${cwd}/ext.qcow2`, ['write -P 1 4k 4k', 'write -P 2 1M 100k', 'write -z 3M 256k'], 'qcow2');
  });

  for (const source of ['src.raw', 'top.qcow2', 'base.qcow2', 'v2.qcow2', 'pre.qcow2', 'ext.qcow2']) {
    it(`measure ${source} for every target`, async (t) => {
      if (!requireQemu(t)) return;
      for (const target of TARGETS) {
        const { format, options } = split(target);
        const want = qemuMeasure(['-O', format, ...(options ? ['-o', options] : []), source]);
        const got = await measure(`${cwd}/${source}`, { targetFormat: format, options });
        assert.deepEqual({ required: got.required, 'fully-allocated': got.fullyAllocated, ...(got.bitmaps === undefined ? {} : { bitmaps: got.bitmaps }) }, want, `${source} -> ${target}`);
      }
    });
  }

  it('measure --size for every target and several sizes', async (t) => {
    if (!requireQemu(t)) return;
    for (const size of [0, 1000, 1 << 20, 10 * 2 ** 30, 3 * 2 ** 40 + 12345]) {
      for (const target of TARGETS) {
        const { format, options } = split(target);
        if (size > 2 ** 40 && options?.includes('cluster_size=512')) continue;
        const want = qemuMeasure(['-O', format, ...(options ? ['-o', options] : []), '--size', String(size)]);
        const got = await measure(undefined, { size, targetFormat: format, options });
        assert.deepEqual({ required: got.required, 'fully-allocated': got.fullyAllocated }, want, `--size ${size} -> ${target}`);
      }
    }
  });

  it('the CLI prints what qemu-img prints, errors included', (t) => {
    if (!requireQemu(t)) return;
    const cases = [
      ['-O', 'qcow2', 'top.qcow2'],
      ['--output=json', '-O', 'qcow2', 'top.qcow2'],
      ['--output=json', '-O', 'qcow2', '--size', '10G'],
      ['-O', 'raw', '--size', '10G'],
      ['-O', 'vmdk', '--size', '1G'],
      ['-O', 'qcow2', '-o', 'foo=bar', '--size', '1G'],
      ['-O', 'qcow2', '-o', 'cluster_size=1000', '--size', '1G'],
      ['-O', 'qcow2', '-o', 'compat=v2', '--size', '1G'],
      ['-O', 'qcow2', '--size', '1P', '-o', 'cluster_size=512'],
      ['--size', '1G', 'src.raw'],
      ['-f', 'raw'],
      [],
      ['a', 'b'],
      ['--size', '1x'],
      // -l measures an internal snapshot's content (the image's bitmaps still count).
      ['-O', 'qcow2', '-l', 'early', 'top.qcow2'],
      ['--output=json', '-O', 'qcow2', '-l', 'snapshot.name=early', 'top.qcow2'],
      ['-O', 'raw', '-l', 'snapshot.id=1', 'top.qcow2'],
      ['-O', 'qcow2', '-l', 'missing', 'top.qcow2'],
      ['-O', 'qcow2', '-l', 'early', 'src.raw'],
      ['-O', 'qcow2', '-l', 'early'],
    ];
    for (const args of cases) {
      const q = qemuImg(['measure', ...args], { cwd });
      const v = vdisk(['measure', ...args], { cwd });
      assert.equal(v.stdout, q.stdout, args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
      assert.equal(v.status, q.status, args.join(' '));
    }
  });
});
