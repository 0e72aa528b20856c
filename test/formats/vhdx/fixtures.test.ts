/**
 * VHDX fixtures qemu-img cannot make (fixtures.ts): a 4096-byte-sector
 * image and a differencing image, checked against pyvhdi; an image with a
 * dirty log, whose read-only view must equal what qemu-img reads after
 * `qemu-img check -r all` replays the log on a copy, without the file
 * changing, and which a read-write open replays into a clean image.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { vdisk } from '../../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { make4kImage, makeDifferencing, makeDirtyLog, pattern } from './fixtures.js';
import { pyvhdiPython, pyvhdiRead } from './pyvhdi.js';

const MiB = 1024 * 1024;
const dir = tmpDir('vdisk-vhdx-fx-');
after(() => dir.cleanup());
const at = (n: string): string => join(dir.path, n);

async function readAll(path: string, readOnly = true): Promise<Buffer> {
  const dev = await BlockDevice.open(path, { readOnly, format: 'vhdx' });
  try {
    const buf = new Uint8Array(dev.size);
    await dev.read(0, buf);
    return Buffer.from(buf);
  } finally {
    await dev.close();
  }
}

before(() => {
  const buf = Buffer.alloc(6 * MiB);
  buf.set(pattern(2 * MiB, 11), 0);
  buf.fill(0x3c, 4 * MiB, 5 * MiB);
  writeFileSync(at('src.raw'), buf);
});

describe('vhdx with 4096-byte logical sectors', () => {
  it('reads the guest bytes the fixture wrote, as pyvhdi does', async (t) => {
    const fx = await make4kImage();
    writeFileSync(at('4k.vhdx'), fx.file);
    const ours = await readAll(at('4k.vhdx'));
    assert.ok(ours.equals(Buffer.from(fx.guest)));
    if (!pyvhdiPython) return t.skip('pyvhdi not importable: libyal cross-check skipped');
    pyvhdiRead(at('4k.vhdx'), at('4k.py.raw'));
    assert.ok(readFileSync(at('4k.py.raw')).equals(ours));
  });
});

describe('differencing vhdx', () => {
  it('reads as a chain over its parent (relative_path), equal to pyvhdi', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vhdx', 'src.raw', 'parent.vhdx'], { cwd: dir.path });
    const fx = await makeDifferencing(at('parent.vhdx'), 'parent.vhdx', 6 * MiB);
    writeFileSync(at('child.vhdx'), fx.file);
    const dev = await BlockDevice.open(at('child.vhdx'));
    assert.equal(dev.layers.length, 2);
    assert.deepEqual(dev.top.backing, { filename: 'parent.vhdx', format: 'vhdx' });
    await dev.close();
    const ours = await readAll(at('child.vhdx'));
    assert.ok(ours.equals(Buffer.from(fx.expected(readFileSync(at('src.raw'))))));
    const info = JSON.parse(vdisk(['info', '--output=json', 'child.vhdx'], { cwd: dir.path }).stdout) as Record<string, unknown>;
    assert.equal(info['backing-filename'], 'parent.vhdx');
    assert.equal(info['backing-filename-format'], 'vhdx');
    const conv = vdisk(['convert', '-O', 'raw', 'child.vhdx', 'child.raw'], { cwd: dir.path });
    assert.equal(conv.status, 0, conv.stderr);
    assert.ok(readFileSync(at('child.raw')).equals(ours));
    if (!pyvhdiPython) return t.skip('pyvhdi not importable: libyal cross-check skipped');
    pyvhdiRead(at('child.vhdx'), at('child.py.raw'), at('parent.vhdx'));
    assert.ok(readFileSync(at('child.py.raw')).equals(ours));
  });

  it('refuses a read-write open without touching the file', async (t) => {
    if (!requireQemu(t)) return;
    const before = readFileSync(at('child.vhdx'));
    await assert.rejects(BlockDevice.open(at('child.vhdx'), { readOnly: false, format: 'vhdx' }), { code: 'EUNSUPPORTED' });
    assert.ok(readFileSync(at('child.vhdx')).equals(before));
  });
});

describe('vhdx with a dirty log', () => {
  it('read-only: shows the replayed view, equal to qemu-img after check -r all, and leaves the file alone', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vhdx', 'src.raw', 'dirty.vhdx'], { cwd: dir.path });
    makeDirtyLog(at('dirty.vhdx'), 1);
    const ro = qemuImg(['info', 'dirty.vhdx'], { cwd: dir.path });
    assert.notEqual(ro.status, 0, 'qemu-img refuses a read-only open of a dirty image');
    copyFileSync(at('dirty.vhdx'), at('replayed.vhdx'));
    qemuImgOk(['check', '-r', 'all', 'replayed.vhdx'], { cwd: dir.path });
    qemuImgOk(['convert', '-f', 'vhdx', '-O', 'raw', 'replayed.vhdx', 'replayed.raw'], { cwd: dir.path });
    const expected = readFileSync(at('replayed.raw'));
    assert.ok(!expected.equals(readFileSync(at('src.raw'))), 'the log changes the guest view');
    const before = readFileSync(at('dirty.vhdx'));
    assert.ok((await readAll(at('dirty.vhdx'))).equals(expected));
    const conv = vdisk(['convert', '-O', 'raw', 'dirty.vhdx', 'dirty.raw'], { cwd: dir.path });
    assert.equal(conv.status, 0, conv.stderr);
    assert.ok(readFileSync(at('dirty.raw')).equals(expected));
    assert.ok(readFileSync(at('dirty.vhdx')).equals(before), 'file unchanged');
  });

  it('read-write: replays the log into the file, which qemu-img then finds clean', async (t) => {
    if (!requireQemu(t)) return;
    copyFileSync(at('dirty.vhdx'), at('rw.vhdx'));
    const dev = await BlockDevice.open(at('rw.vhdx'), { readOnly: false, format: 'vhdx' });
    await dev.close();
    const check = qemuImg(['check', 'rw.vhdx'], { cwd: dir.path });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal(qemuImg(['compare', '-f', 'vhdx', '-F', 'raw', 'rw.vhdx', 'replayed.raw'], { cwd: dir.path }).status, 0);
  });
});
