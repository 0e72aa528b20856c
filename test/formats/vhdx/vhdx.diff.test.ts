/**
 * vhdx against qemu-img (and pyvhdi): images qemu-img makes read back
 * byte-identical, `info` equals, `create` prints the same Formatting line
 * and errors, and images vdisk writes pass `qemu-img check` and `compare`
 * and read back through pyvhdi.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { asVdisk, vdisk } from '../../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { pattern } from './fixtures.js';
import { pyvhdiPython, pyvhdiRead } from './pyvhdi.js';

const MiB = 1024 * 1024;
const dir = tmpDir('vdisk-vhdx-');
after(() => dir.cleanup());
const at = (n: string): string => join(dir.path, n);

before(() => {
  // 5 MiB + 512: random data, a hole, a written zero run, data in the last (partial) block.
  const buf = Buffer.alloc(5 * MiB + 512);
  buf.set(pattern(MiB + 4096, 3), 0);
  buf.fill(0x55, 3 * MiB, 3 * MiB + 70000);
  buf.fill(0xaa, buf.length - 3000);
  writeFileSync(at('src.raw'), buf);
});

async function readAll(path: string): Promise<Buffer> {
  const dev = await BlockDevice.open(path);
  try {
    const buf = new Uint8Array(dev.size);
    await dev.read(0, buf);
    return Buffer.from(buf);
  } finally {
    await dev.close();
  }
}

const VARIANTS: readonly string[] = [
  'subformat=dynamic',
  'subformat=dynamic,block_state_zero=off',
  'subformat=fixed',
  'subformat=fixed,block_state_zero=off',
  'block_size=1M',
  'block_size=256M',
  'block_size=2M,log_size=2M',
];

describe('vhdx images made by qemu-img', () => {
  for (const [n, opts] of VARIANTS.entries()) {
    it(`reads -o ${opts} byte-identically and prints the same info`, async (t) => {
      if (!requireQemu(t)) return;
      const img = `q${n}.vhdx`;
      qemuImgOk(['convert', '-f', 'raw', '-O', 'vhdx', '-o', opts, 'src.raw', img], { cwd: dir.path });
      qemuImgOk(['convert', '-f', 'vhdx', '-O', 'raw', img, `q${n}.raw`], { cwd: dir.path });
      assert.ok((await readAll(at(img))).equals(readFileSync(at(`q${n}.raw`))));
      for (const args of [['info'], ['info', '--output=json']]) {
        const ours = vdisk([...args, img], { cwd: dir.path });
        assert.equal(ours.status, 0, ours.stderr);
        assert.equal(ours.stdout, qemuImgOk([...args, img], { cwd: dir.path }), args.join(' '));
      }
    });
  }

  it('reads blocks qemu-io wrote into a vdisk-made image', async (t) => {
    if (!requireQemu(t)) return;
    assert.equal(vdisk(['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', 'w.vhdx', '8M'], { cwd: dir.path }).status, 0);
    const io = qemuImg(['info', 'w.vhdx'], { cwd: dir.path });
    assert.equal(io.status, 0, io.stderr);
    qemuImgOk(['convert', '-n', '-f', 'raw', '-O', 'vhdx', 'src.raw', 'w.vhdx'], { cwd: dir.path });
    qemuImgOk(['convert', '-f', 'vhdx', '-O', 'raw', 'w.vhdx', 'w.raw'], { cwd: dir.path });
    assert.ok((await readAll(at('w.vhdx'))).equals(readFileSync(at('w.raw'))));
  });
});

describe('vdisk create -f vhdx equals qemu-img', () => {
  const cases: readonly (readonly string[])[] = [
    ['1G'],
    ['-o', 'subformat=fixed,block_size=1M,log_size=2M,block_state_zero=off', '10M'],
    ['-o', 'subformat=fixed', '20M'],
    ['-o', 'block_size=1000,log_size=1000', '100M'],
    ['-o', 'block_size=512M', '2G'],
    ['200G'],
    ['0'],
    ['1000'],
  ];
  for (const [n, args] of cases.entries()) {
    it(`create ${args.join(' ')} prints the same line and passes qemu-img check`, (t) => {
      if (!requireQemu(t)) return;
      const ours = vdisk(['create', '-f', 'vhdx', ...args.slice(0, -1), `v${n}.vhdx`, ...args.slice(-1)], { cwd: dir.path });
      const theirs = qemuImg(['create', '-f', 'vhdx', ...args.slice(0, -1), `c${n}.vhdx`, ...args.slice(-1)], { cwd: dir.path });
      assert.equal(ours.status, 0, ours.stderr);
      assert.equal(ours.stdout.replace(`v${n}.vhdx`, `c${n}.vhdx`), theirs.stdout);
      assert.equal(qemuImg(['check', `v${n}.vhdx`], { cwd: dir.path }).status, 0);
      const infoOurs = qemuImgOk(['info', '--output=json', `v${n}.vhdx`], { cwd: dir.path });
      const infoTheirs = qemuImgOk(['info', '--output=json', `c${n}.vhdx`], { cwd: dir.path });
      const strip = (s: string): string => s.replace(/"actual-size": \d+/, '').replace(/"filename": "[^"]*"/, '');
      assert.equal(strip(infoOurs), strip(infoTheirs));
      assert.equal(readFileSync(at(`v${n}.vhdx`)).length, readFileSync(at(`c${n}.vhdx`)).length, 'same file length');
    });
  }

  for (const opts of ['block_size=3M', 'log_size=4G', 'log_size=0', 'subformat=foo', 'block_state_zero=x', 'bogus=1']) {
    it(`refuses -o ${opts} with qemu-img's message`, (t) => {
      if (!requireQemu(t)) return;
      const ours = vdisk(['create', '-f', 'vhdx', '-o', opts, 'e.vhdx', '1G'], { cwd: dir.path });
      const theirs = qemuImg(['create', '-f', 'vhdx', '-o', opts, 'e.vhdx', '1G'], { cwd: dir.path });
      assert.equal(ours.status, theirs.status);
      assert.equal(ours.stdout, theirs.stdout);
      assert.equal(ours.stderr, asVdisk(theirs.stderr));
    });
  }

  it('refuses sizes above 64 TiB', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['create', '-f', 'vhdx', 'big.vhdx', '65T'], { cwd: dir.path });
    assert.equal(ours.status, 1);
    assert.equal(ours.stderr, asVdisk(qemuImg(['create', '-f', 'vhdx', 'big.vhdx', '65T'], { cwd: dir.path }).stderr));
  });

  it('prints the same -o help as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    assert.equal(vdisk(['create', '-f', 'vhdx', '-o', 'help']).stdout, qemuImgOk(['create', '-f', 'vhdx', '-o', 'help']));
  });
});

describe('vdisk convert -O vhdx', () => {
  for (const opts of ['subformat=dynamic', 'subformat=fixed', 'subformat=dynamic,block_size=1M,block_state_zero=off', 'subformat=fixed,block_state_zero=off']) {
    it(`-o ${opts}: qemu-img compare equal, check clean, pyvhdi reads the same`, (t) => {
      if (!requireQemu(t)) return;
      const out = `out-${opts.replace(/[=,]/g, '_')}.vhdx`;
      const r = vdisk(['convert', '-f', 'raw', '-O', 'vhdx', '-o', opts, 'src.raw', out], { cwd: dir.path });
      assert.equal(r.status, 0, r.stderr);
      const cmp = qemuImg(['compare', '-f', 'raw', '-F', 'vhdx', 'src.raw', out], { cwd: dir.path });
      assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
      const check = qemuImg(['check', out], { cwd: dir.path });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      if (!pyvhdiPython) {
        t.diagnostic('pyvhdi not importable: libyal cross-check skipped');
        return;
      }
      pyvhdiRead(at(out), at(`${out}.py.raw`));
      assert.ok(readFileSync(at(`${out}.py.raw`)).equals(readFileSync(at('src.raw'))));
    });
  }

  it('writes over existing data and into ZERO blocks through the BlockDevice', async (t) => {
    if (!hasQemu) return t.skip('qemu-img not installed');
    qemuImgOk(['create', '-f', 'vhdx', '-o', 'block_size=1M', 'rw.vhdx', '6M'], { cwd: dir.path });
    const dev = await BlockDevice.open(at('rw.vhdx'), { readOnly: false, format: 'vhdx' });
    const model = new Uint8Array(6 * MiB);
    const writes: [number, number, number][] = [
      [100, 5000, 1],
      [MiB - 10, 3 * MiB, 2],
      [2 * MiB + 7, 100, 3],
      [6 * MiB - 512, 512, 4],
    ];
    for (const [off, len, seed] of writes) {
      const d = pattern(len, seed);
      model.set(d, off);
      await dev.write(off, d);
    }
    await dev.writeZeroes(MiB, 4096);
    model.fill(0, MiB, MiB + 4096);
    await dev.close();
    assert.equal(qemuImg(['check', 'rw.vhdx'], { cwd: dir.path }).status, 0);
    qemuImgOk(['convert', '-f', 'vhdx', '-O', 'raw', 'rw.vhdx', 'rw.raw'], { cwd: dir.path });
    assert.ok(readFileSync(at('rw.raw')).equals(Buffer.from(model)));
  });
});
