/**
 * Writing into an L2 table an internal snapshot shares copies the table
 * (copy-on-write). The copy was made with `.slice()` of the cache's buffer,
 * a Node Buffer, whose slice() is a view: the new table and the shared one
 * were the same memory, so the snapshot's table changed in the cache with
 * every write to the copy. The cached shared table must stay as on disk.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import type { Qcow2Image } from '../../../src/formats/qcow2/image.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-s10-cow-');
after(() => dir.cleanup());

describe('qcow2 copy-on-write of a shared L2 table', () => {
  it('leaves the shared table in the cache as it is on disk', async (t) => {
    if (!requireQemu(t)) return;
    const image = join(dir.path, 's.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', image, '8M']);
    qemuIo(image, ['write -P 0x11 0 1M'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 'one', image]);
    const dev = await BlockDevice.open(image, { readOnly: false });
    try {
      const s = (dev.top.image as Qcow2Image).state;
      // L1 entry 0 without COPIED: its table is the snapshot's too.
      const shared = Number(s.l1.getBigUint64(0) & 0x00fffffffffffe00n);
      const before = new Uint8Array(await s.l2Cache.get(shared));
      await dev.write(64 * 1024, new Uint8Array(64 * 1024).fill(0x22));
      assert.deepEqual(new Uint8Array(await s.l2Cache.get(shared)), before, 'the cached shared table changed with the copy');
      await dev.flush();
    } finally {
      await dev.close();
    }
    const disk = readFileSync(image);
    assert.ok(disk.length > 0);
    qemuImgOk(['check', image]);
    // The snapshot still reads its own data.
    const raw = join(dir.path, 'one.raw');
    qemuImgOk(['convert', '-l', 'one', '-O', 'raw', image, raw]);
    assert.ok(readFileSync(raw).subarray(64 * 1024, 128 * 1024).every((b) => b === 0x11));
  });
});
