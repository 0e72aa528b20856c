/** vmdk: images qemu-img makes read back byte-identical; info and create match qemu-img. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { vdisk } from '../../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { mixedRaw } from './build.js';

const dir = tmpDir('vdisk-vmdk-');
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'];
const MULTI_FILE = new Set(['monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']);
const SIZE = 3 * 1024 * 1024 + 1536;

function source(): string {
  if (!existsSync(p('src.raw'))) writeFileSync(p('src.raw'), mixedRaw(SIZE));
  return p('src.raw');
}

async function readAll(path: string): Promise<Uint8Array> {
  const dev = await BlockDevice.open(path);
  try {
    const buf = new Uint8Array(dev.size);
    await dev.read(0, buf);
    return buf;
  } finally {
    await dev.close();
  }
}

function infoJson(text: string, dropActual: boolean): unknown {
  const o = JSON.parse(text) as Record<string, unknown>;
  if (dropActual) delete o['actual-size'];
  return o;
}

describe('vmdk: reading what qemu-img writes', () => {
  for (const [sub, extra] of [...SUBFORMATS.map((s) => [s, ''] as const), ['monolithicSparse', ',zeroed_grain=on'] as const]) {
    it(`${sub}${extra} reads back identical and info matches`, async (t) => {
      if (!requireQemu(t)) return;
      const name = `q-${sub}${extra ? '-zg' : ''}.vmdk`;
      qemuImgOk(['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}${extra}`, source(), p(name)], { cwd: dir.path });
      if (extra) qemuImgOk(['convert', '-n', '-f', 'raw', '-O', 'vmdk', source(), p(name)]); // exercises zeroed writes
      qemuImgOk(['convert', '-f', 'vmdk', '-O', 'raw', p(name), p(`${name}.raw`)]);
      const expected = readFileSync(p(`${name}.raw`));
      assert.ok(Buffer.from(await readAll(p(name))).equals(expected), 'content differs from qemu-img convert -O raw');
      const q = qemuImgOk(['info', '--output=json', name], { cwd: dir.path });
      const v = vdisk(['info', '--output=json', name], { cwd: dir.path });
      assert.equal(v.status, 0, v.stderr);
      assert.deepEqual(infoJson(v.stdout, MULTI_FILE.has(sub)), infoJson(q, MULTI_FILE.has(sub)));
      if (!MULTI_FILE.has(sub)) assert.equal(v.stdout, q);
      const hq = qemuImgOk(['info', name], { cwd: dir.path }).split('\n').filter((l) => !l.startsWith('disk size'));
      const hv = vdisk(['info', name], { cwd: dir.path }).stdout.split('\n').filter((l) => !l.startsWith('disk size'));
      assert.deepEqual(hv, hq);
    });
  }

  it('reads a child through its parent (parentFileNameHint, CID checked)', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vmdk', source(), p('base.vmdk')]);
    qemuImgOk(['create', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', p('child.vmdk')]);
    qemuIo(p('child.vmdk'), ['write -P 0x11 512k 128k', 'write -z 2M 64k'], 'vmdk');
    qemuImgOk(['convert', '-O', 'raw', p('child.vmdk'), p('child.raw')]);
    assert.ok(Buffer.from(await readAll(p('child.vmdk'))).equals(readFileSync(p('child.raw'))));
    const q = qemuImgOk(['info', '--output=json', 'child.vmdk'], { cwd: dir.path });
    const v = vdisk(['info', '--output=json', 'child.vmdk'], { cwd: dir.path });
    assert.equal(v.stdout, q);
  });
});

describe('vmdk: create', () => {
  const cases = [
    '',
    'subformat=monolithicFlat',
    'subformat=twoGbMaxExtentSparse',
    'subformat=twoGbMaxExtentFlat',
    'subformat=streamOptimized',
    'adapter_type=lsilogic,hwversion=7,toolsversion=abc,zeroed_grain=on',
    'compat6=on',
    'adapter_type=buslogic,compat6=off',
  ];
  for (const o of cases) {
    it(`prints qemu-img's Formatting line and makes an image qemu-img accepts (${o || 'defaults'})`, (t) => {
      if (!requireQemu(t)) return;
      const args = (name: string): string[] => ['create', '-f', 'vmdk', ...(o ? ['-o', o] : []), name, '2G'];
      const q = qemuImg(args('q.vmdk'), { cwd: dir.path });
      const v = vdisk(args('v.vmdk'), { cwd: dir.path });
      assert.equal(v.status, q.status, v.stderr);
      assert.equal(v.stdout, q.stdout.replaceAll("'q.vmdk'", "'v.vmdk'"));
      qemuImgOk(['check', 'v.vmdk'], { cwd: dir.path });
      const qi = JSON.parse(qemuImgOk(['info', '--output=json', 'q.vmdk'], { cwd: dir.path })) as Record<string, unknown>;
      const vi = JSON.parse(qemuImgOk(['info', '--output=json', 'v.vmdk'], { cwd: dir.path })) as Record<string, unknown>;
      assert.equal(vi['virtual-size'], qi['virtual-size']);
      const spec = (i: Record<string, unknown>): unknown => {
        const d = { ...((i['format-specific'] as { data: Record<string, unknown> }).data) };
        delete d['cid'];
        return JSON.stringify(d).replaceAll('q-', 'X-').replaceAll('q.vmdk', 'X.vmdk').replaceAll('v-', 'X-').replaceAll('v.vmdk', 'X.vmdk');
      };
      assert.equal(spec(vi), spec(qi));
      const descOf = (n: string): string => readFileSync(p(n)).subarray(0, 12000).toString('latin1').replace(/\0[\s\S]*$/, '').replace(/^CID=.*$/m, '');
      if (o.includes('Flat') || o.includes('twoGb')) assert.equal(descOf('v.vmdk').replaceAll('"v-', '"q-'), descOf('q.vmdk'));
    });
  }

  for (const [o, size] of [['subformat=foo', '1M'], ['adapter_type=scsi', '1M'], ['compat6=on,hwversion=7', '1M'], ['subformat=monolithicFlat,zeroed_grain=on', '1M'], ['backing_fmt=qcow2', '1M']] as const) {
    it(`refuses -o ${o} with qemu-img's message`, (t) => {
      if (!requireQemu(t)) return;
      const q = qemuImg(['create', '-f', 'vmdk', '-o', o, 'bad.vmdk', size], { cwd: dir.path });
      const v = vdisk(['create', '-f', 'vmdk', '-o', o, 'bad.vmdk', size], { cwd: dir.path });
      assert.equal(v.status, q.status);
      assert.equal(v.stderr.replace('vdisk:', 'qemu-img:'), q.stderr);
    });
  }
});
