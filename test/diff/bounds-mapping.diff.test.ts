/**
 * Block status asks a driver for one extent (`maxExtents` 1); a driver that
 * walks on to build hundreds (VDI: 256 blocks, VMDK: 16384 grains) turns a
 * `map` or convert of a fragmented image into that many times the work.
 * Every table-walking driver stops once the extents asked for are
 * complete, and `map` still answers as qemu-img does.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** 64 MiB where every other 2 MiB holds data: each format's blocks alternate between data and holes. */
function stripedRaw(): string {
  const name = join(cwd, 'striped.raw');
  const b = new Uint8Array(64 << 20);
  for (let i = 0; i < b.length; i += 4 << 20) b.fill(0x5a, i, i + (2 << 20));
  writeFileSync(name, b);
  return name;
}

const cases = [
  { format: 'vdi', options: '' },
  { format: 'vpc', options: '' },
  { format: 'vhdx', options: 'block_size=1M' },
  { format: 'vmdk', options: 'subformat=monolithicSparse' },
  { format: 'vmdk', options: 'subformat=streamOptimized' },
];

describe('drivers honour the extent limit of a mapping call', () => {
  for (const c of cases) {
    it(`${c.format} ${c.options}`, async (t) => {
      if (!requireQemu(t)) return;
      const name = `img-${c.format}-${c.options.replace(/\W/g, '')}.${c.format}`;
      qemuImgOk(['convert', '-f', 'raw', '-O', c.format, ...(c.options ? ['-o', c.options] : []), stripedRaw(), name], { cwd });
      const dev = await BlockDevice.open(join(cwd, name), { format: c.format });
      try {
        const image = dev.top.image;
        const all = await image.mapping(0, image.virtualSize);
        assert.ok(all.length > 3);
        // as many as asked for, each complete: the same as the first of an unlimited call
        assert.deepEqual(await image.mapping(0, image.virtualSize, 1), all.slice(0, 1));
        assert.deepEqual(await image.mapping(0, image.virtualSize, 3), all.slice(0, 3));
      } finally {
        await dev.close();
      }
      const q = qemuImg(['map', '--output=json', name], { cwd });
      const v = vdisk(['map', '--output=json', name], { cwd });
      assert.equal(v.stdout, q.stdout);
      assert.equal(v.status, q.status);
    });
  }
});
