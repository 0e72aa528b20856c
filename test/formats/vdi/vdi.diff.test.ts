/**
 * vdi against qemu-img 7.2: images qemu-img makes read back identically,
 * `info` and `create` print the same, images vdisk writes compare equal
 * and check clean, and hand-corrupted headers fail with qemu's messages.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { vdisk } from '../../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { pseudoRandom, writeSource } from '../vpc/fixtures.js';

const dir = tmpDir('vdisk-vdi-');
const at = (n: string): string => join(dir.path, n);
let source: Buffer;
before(() => {
  source = writeSource(at('src.raw'));
});
after(() => dir.cleanup());

async function readAll(path: string): Promise<Buffer> {
  const dev = await BlockDevice.open(path);
  try {
    const buf = Buffer.alloc(dev.size);
    await dev.read(0, buf);
    return buf;
  } finally {
    await dev.close();
  }
}

function sameInfo(name: string): void {
  for (const out of [['--output=json'], []]) {
    const ours = vdisk(['info', ...out, name], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, qemuImgOk(['info', ...out, name], { cwd: dir.path }));
  }
}

const VARIANTS: readonly (readonly string[])[] = [[], ['-o', 'static=on']];

describe('vdi images made by qemu-img read back identically', () => {
  VARIANTS.forEach((o, i) => {
    it(`qemu-img convert -O vdi ${o.join(' ')}`, async (t) => {
      if (!requireQemu(t)) return;
      qemuImgOk(['convert', '-f', 'raw', '-O', 'vdi', ...o, 'src.raw', `q${i}.vdi`], { cwd: dir.path });
      assert.ok((await readAll(at(`q${i}.vdi`))).equals(source));
      sameInfo(`q${i}.vdi`);
    });
  });
});

describe('vdisk create -f vdi equals qemu-img create', () => {
  VARIANTS.forEach((o, i) => {
    it(`create -f vdi ${o.join(' ')}`, (t) => {
      if (!requireQemu(t)) return;
      for (const size of ['10M', '1000', '0', '3G', '600T']) {
        const [v, q] = [`c${i}-${size}-v.vdi`, `c${i}-${size}-q.vdi`];
        const ours = vdisk(['create', '-f', 'vdi', ...o, v, size], { cwd: dir.path });
        const theirs = qemuImg(['create', '-f', 'vdi', ...o, q, size], { cwd: dir.path });
        assert.equal(ours.status, theirs.status, ours.stderr);
        assert.equal(ours.stdout.replaceAll(v, q), theirs.stdout);
        assert.equal(ours.stderr.replaceAll('vdisk:', 'qemu-img:').replaceAll(v, q), theirs.stderr);
        if (theirs.status !== 0) continue;
        assert.equal(statSync(at(v)).size, statSync(at(q)).size);
        assert.equal(qemuImgOk(['info', '--output=json', v], { cwd: dir.path }).replaceAll(v, 'X'), qemuImgOk(['info', '--output=json', q], { cwd: dir.path }).replaceAll(q, 'X'));
        assert.equal(qemuImg(['check', v], { cwd: dir.path }).status, 0);
      }
    });
  });
});

describe('vdisk writes vdi images qemu-img accepts', () => {
  VARIANTS.forEach((o, i) => {
    it(`convert -O vdi ${o.join(' ')}`, (t) => {
      if (!requireQemu(t)) return;
      const r = vdisk(['convert', '-f', 'raw', '-O', 'vdi', ...o, 'src.raw', `w${i}.vdi`], { cwd: dir.path });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'vdi', 'src.raw', `w${i}.vdi`], { cwd: dir.path }).status, 0);
      const check = qemuImg(['check', `w${i}.vdi`], { cwd: dir.path });
      assert.equal(check.status, 0, check.stdout + check.stderr);
    });
  });

  it('random and zero writes match a model, qemu-img and qemu-img check', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-f', 'vdi', 'rw.vdi', '6M'], { cwd: dir.path });
    const model = Buffer.alloc(6 * 1024 * 1024);
    const dev = await BlockDevice.open(at('rw.vdi'), { readOnly: false });
    try {
      for (const [i, [off, len]] of ([[5 * 1024 * 1024 + 3, 5000], [1024 * 1024 - 10, 30], [0, 70000]] as const).entries()) {
        const data = pseudoRandom(len, i + 11);
        await dev.write(off, data);
        data.copy(model, off);
      }
      await dev.writeZeroes(100, 1000);
      model.fill(0, 100, 1100);
    } finally {
      await dev.close();
    }
    assert.ok((await readAll(at('rw.vdi'))).equals(model));
    qemuImgOk(['convert', '-O', 'raw', 'rw.vdi', 'rw.raw'], { cwd: dir.path });
    assert.ok(readFileSync(at('rw.raw')).equals(model));
    assert.equal(qemuImg(['check', 'rw.vdi'], { cwd: dir.path }).status, 0);
  });
});

/** Header patches and the message qemu-img gives for each (vdisk prints the same after `Could not open 'x': `). */
const CORRUPTIONS: readonly { what: string; patch: (b: Buffer) => void }[] = [
  { what: 'signature', patch: (b) => b.writeUInt32LE(0x12345678, 0x40) },
  { what: 'version', patch: (b) => b.writeUInt32LE(0x00020003, 0x44) },
  { what: 'block map offset', patch: (b) => b.writeUInt32LE(0x201, 0x154) },
  { what: 'data offset', patch: (b) => b.writeUInt32LE(0x401, 0x158) },
  { what: 'sector size', patch: (b) => b.writeUInt32LE(4096, 0x168) },
  { what: 'block size', patch: (b) => b.writeUInt32LE(2 * 1024 * 1024, 0x178) },
  { what: 'disk size vs blocks', patch: (b) => b.writeBigUInt64LE(100n * 1024n * 1024n, 0x170) },
  { what: 'huge disk size', patch: (b) => b.writeBigUInt64LE(1n << 60n, 0x170) },
  { what: 'link UUID', patch: (b) => (b[0x1a8] = 1) },
  { what: 'parent UUID', patch: (b) => (b[0x1b8] = 1) },
  { what: 'too many blocks', patch: (b) => b.writeUInt32LE(0x20000000, 0x180) },
];

describe('corrupt vdi headers fail with qemu-img messages', () => {
  for (const c of CORRUPTIONS) {
    it(c.what, (t) => {
      if (!requireQemu(t)) return;
      const name = `bad-${c.what.replaceAll(' ', '-')}.vdi`;
      qemuImgOk(['create', '-q', '-f', 'vdi', name, '4M'], { cwd: dir.path });
      const b = readFileSync(at(name));
      c.patch(b);
      writeFileSync(at(name), b);
      const theirs = qemuImg(['info', '-f', 'vdi', name], { cwd: dir.path });
      const ours = vdisk(['info', '-f', 'vdi', name], { cwd: dir.path });
      assert.notEqual(theirs.status, 0);
      assert.notEqual(ours.status, 0);
      assert.equal(ours.stderr.replaceAll('vdisk:', 'qemu-img:'), theirs.stderr);
    });
  }
});
