/**
 * vpc (VHD) against qemu-img 7.2: images qemu-img makes read back
 * byte-identical, `info` prints the same, `create` prints the same
 * Formatting line and makes images qemu-img reads, and images vdisk
 * writes compare equal (qemu-img compare, and libvhdi when installed).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { vdisk } from '../../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { pseudoRandom, writeSource } from './fixtures.js';
import { pyvhdiDigest, sha256, usePyvhdi } from './pyvhdi.js';

const dir = tmpDir('vdisk-vpc-');
const at = (n: string): string => join(dir.path, n);
let source: Buffer;
before(() => {
  source = writeSource(at('src.raw'));
});
after(() => dir.cleanup());

async function readAll(path: string, format?: string): Promise<Buffer> {
  const dev = await BlockDevice.open(path, { format });
  try {
    const buf = Buffer.alloc(dev.size);
    await dev.read(0, buf);
    return buf;
  } finally {
    await dev.close();
  }
}

function sameInfo(name: string, args: string[] = []): void {
  for (const out of [['--output=json'], []]) {
    const ours = vdisk(['info', ...args, ...out, name], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, qemuImgOk(['info', ...args, ...out, name], { cwd: dir.path }), `info ${out.join(' ')} ${name}`);
  }
}

const VARIANTS: readonly (readonly string[])[] = [[], ['-o', 'subformat=fixed'], ['-o', 'force_size=on'], ['-o', 'subformat=fixed,force_size=on']];
const fmtArgs = (o: readonly string[]): string[] => (o.join().includes('fixed') ? ['-f', 'vpc'] : []);

describe('vpc images made by qemu-img read back identically', () => {
  VARIANTS.forEach((o, i) => {
    it(`qemu-img convert -O vpc ${o.join(' ')}`, async (t) => {
      if (!requireQemu(t)) return;
      const name = `q${i}.vpc`;
      qemuImgOk(['convert', '-f', 'raw', '-O', 'vpc', ...o, 'src.raw', name], { cwd: dir.path });
      qemuImgOk(['convert', '-f', 'vpc', '-O', 'raw', name, `q${i}.raw`], { cwd: dir.path });
      const ours = await readAll(at(name), 'vpc');
      assert.ok(ours.equals(readFileSync(at(`q${i}.raw`))), 'guest data differs from qemu-img convert -O raw');
      sameInfo(name, fmtArgs(o));
    });
  });

  it('probes dynamic VHDs but not fixed ones (qemu-img reads those as raw)', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed', 'src.raw', 'probe-fixed.vpc'], { cwd: dir.path });
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vpc', 'src.raw', 'probe-dyn.vpc'], { cwd: dir.path });
    sameInfo('probe-fixed.vpc');
    sameInfo('probe-dyn.vpc');
  });
});

describe('vdisk create -f vpc equals qemu-img create', () => {
  const sizes = ['100M', '4095M', '4M', '1000', '0', '130G', '3T'];
  VARIANTS.forEach((o, i) => {
    it(`create -f vpc ${o.join(' ')}`, (t) => {
      if (!requireQemu(t)) return;
      for (const size of sizes) {
        if (o.join().includes('fixed') && size.endsWith('G')) continue;
        const [v, q] = [`c${i}-${size}-v.vpc`, `c${i}-${size}-q.vpc`];
        const ours = vdisk(['create', '-f', 'vpc', ...o, v, size], { cwd: dir.path });
        const theirs = qemuImg(['create', '-f', 'vpc', ...o, q, size], { cwd: dir.path });
        assert.equal(ours.status, theirs.status, `${size}: ${ours.stderr}`);
        assert.equal(ours.stdout.replaceAll(v, q), theirs.stdout);
        assert.equal(ours.stderr.replaceAll('vdisk:', 'qemu-img:').replaceAll(v, q), theirs.stderr);
        if (theirs.status !== 0) continue;
        assert.equal(statSync(at(v)).size, statSync(at(q)).size, `file size for ${size}`);
        const info = (n: string): string => {
          const r = qemuImg(['info', ...fmtArgs(o), '--output=json', n], { cwd: dir.path });
          return `${r.status} ${r.stdout} ${r.stderr}`.replaceAll(n, 'X');
        };
        assert.equal(info(v), info(q), `qemu-img info for ${size}`);
      }
    });
  });

  it('refuses a bad subformat with qemu-img words', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['create', '-f', 'vpc', '-o', 'subformat=foo', 'bad.vpc', '1M'], { cwd: dir.path });
    const theirs = qemuImg(['create', '-f', 'vpc', '-o', 'subformat=foo', 'bad.vpc', '1M'], { cwd: dir.path });
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.stderr.replaceAll('vdisk:', 'qemu-img:'), theirs.stderr);
  });
});

describe('vdisk writes vpc images qemu-img and libvhdi read', () => {
  for (const sub of ['dynamic', 'fixed']) {
    it(`convert -O vpc -o subformat=${sub}`, async (t) => {
      if (!requireQemu(t)) return;
      const name = `w-${sub}.vpc`;
      const r = vdisk(['convert', '-f', 'raw', '-O', 'vpc', '-o', `subformat=${sub}`, 'src.raw', name], { cwd: dir.path });
      assert.equal(r.status, 0, r.stderr);
      const cmp = qemuImg(['compare', '-f', 'raw', '-F', 'vpc', 'src.raw', name], { cwd: dir.path });
      assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
      const ours = await readAll(at(name), 'vpc');
      const expected = Buffer.concat([source, Buffer.alloc(ours.length - source.length)]);
      assert.ok(ours.equals(expected));
      if (usePyvhdi()) {
        const d = pyvhdiDigest(at(name));
        assert.equal(d.size, ours.length);
        assert.equal(d.sha256, sha256(expected));
      }
    });
  }

  it('random writes and zero writes into a dynamic VHD match a model and qemu-img', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-f', 'vpc', 'rw.vpc', '9M'], { cwd: dir.path });
    const dev = await BlockDevice.open(at('rw.vpc'), { readOnly: false });
    const model = Buffer.alloc(dev.size);
    const ops: [number, number][] = [[0, 4096], [2 * 1024 * 1024 - 100, 300], [5 * 1024 * 1024 + 7, 1024 * 1024], [dev.size - 512, 512], [3 * 1024 * 1024, 70000]];
    try {
      for (const [i, [off, len]] of ops.entries()) {
        const data = pseudoRandom(len, i + 1);
        await dev.write(off, data);
        data.copy(model, off);
      }
      await dev.writeZeroes(5 * 1024 * 1024 + 1000, 5000);
      model.fill(0, 5 * 1024 * 1024 + 1000, 5 * 1024 * 1024 + 6000);
    } finally {
      await dev.close();
    }
    assert.ok((await readAll(at('rw.vpc'))).equals(model));
    qemuImgOk(['convert', '-f', 'vpc', '-O', 'raw', 'rw.vpc', 'rw.raw'], { cwd: dir.path });
    assert.ok(readFileSync(at('rw.raw')).equals(model), 'qemu-img reads what vdisk wrote');
  });
});
