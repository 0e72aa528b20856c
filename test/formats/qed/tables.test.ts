/**
 * QED table paging and geometry (./src/formats/qed): tables are read in
 * 64 KiB pages, so runs of clusters, writes, zero writes and the check
 * must carry across page boundaries (entry 8192 of a default 256 KiB
 * table: guest offset 512 MiB); qemu's maximum image size wraps in
 * 64-bit arithmetic for the largest geometries, and vdisk compares
 * against the same wrapped value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { qedMaxImageSize } from '../../../src/formats/qed/header.js';
import { qedDriver } from '../../../src/formats/qed/index.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

const noExternal = { open: () => Promise.reject(new Error('unused')) };
const MiB = 1024 * 1024;

async function image(size: number): Promise<MemoryStore> {
  const store = new MemoryStore('t.qed');
  await qedDriver.create!(store, { size, options: new Map(), filename: 't.qed', external: noExternal });
  return store;
}

describe('qed tables across page boundaries', () => {
  it('a write across entry 8192 is one data run, reads back, maps and checks clean', async () => {
    const store = await image(1024 * MiB);
    const at = 512 * MiB - 3 * 65536 - 100;
    const data = new Uint8Array(6 * 65536).map((_, i) => i & 0xff);
    let dev = await BlockDevice.open(store, { format: 'qed', readOnly: false });
    await dev.write(at, data);
    await dev.writeZeroes(512 * MiB + 4 * 65536, 4 * 65536);
    await dev.close();
    dev = await BlockDevice.open(store, { format: 'qed', readOnly: true });
    try {
      const back = new Uint8Array(data.length);
      await dev.read(at, back);
      assert.deepEqual(back, data);
      // the first cluster is partly written, the next six are contiguous host clusters: one run across the page
      const st = await dev.blockStatus(at - (at % 65536), 8 * 65536);
      assert.equal(st.data, true);
      assert.equal(st.length, 7 * 65536);
      const z = await dev.blockStatus(512 * MiB + 4 * 65536, 8 * 65536);
      assert.deepEqual([z.zero, z.data, z.length], [true, false, 4 * 65536]);
      const counts = await dev.top.image.checker!.check({ repair: 'none', log: () => {} });
      assert.deepEqual([counts.corruptions, counts.leaks, counts.allocatedClusters], [0, 0, 7]);
    } finally {
      await dev.close();
    }
  });

  it("qemu's maximum image size, wrapped as uint64 for the largest geometries", () => {
    assert.equal(qedMaxImageSize(65536, 4), 64n * 1024n ** 4n);
    assert.equal(qedMaxImageSize(64 * MiB, 1), 0n); // 2^72 wraps to 0: qemu refuses every size but 0
    assert.equal(qedMaxImageSize(2 * MiB, 8), 2n ** 63n);
  });
});
