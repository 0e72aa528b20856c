/**
 * BlockDevice splits guest requests at the granularity a writer declares
 * (ImageWriter.requestBoundary), so drivers handle one allocation unit per
 * call; vdi and vpc rely on it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import type { ExternalFiles, FormatDriver } from '../../src/formats/driver.js';
import { vdiDriver } from '../../src/formats/vdi/index.js';
import { vpcDriver } from '../../src/formats/vpc/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { traceDriver } from '../helpers/trace-driver.js';

const SIZE = 64 * 1024;
const noExternal: ExternalFiles = { open: () => Promise.reject(new Error('no external files here')) };

async function traced(boundary?: number) {
  const t = traceDriver({ boundary });
  const dev = await BlockDevice.open(new MemoryStore('trace', new Uint8Array(SIZE)), { format: 'trace', registry: t.registry, readOnly: false });
  return { dev, calls: t.calls };
}

describe('BlockDevice request splitting', () => {
  it('write splits at the requestBoundary, in order, and the data reads back', async () => {
    const { dev, calls } = await traced(4096);
    const data = new Uint8Array(randomBytes(10_000));
    await dev.write(1000, data);
    assert.deepEqual(calls, [
      { op: 'write', offset: 1000, length: 3096 },
      { op: 'write', offset: 4096, length: 4096 },
      { op: 'write', offset: 8192, length: 2808 },
    ]);
    const back = new Uint8Array(data.length);
    await dev.read(1000, back);
    assert.deepEqual(back, data);
    await dev.close();
  });

  it('writeZeroes and discard split the same way', async () => {
    const { dev, calls } = await traced(8192);
    await dev.writeZeroes(4096, 16384, { mayUnmap: true });
    await dev.discard(8192, 8193);
    assert.deepEqual(calls, [
      { op: 'zero', offset: 4096, length: 4096 },
      { op: 'zero', offset: 8192, length: 8192 },
      { op: 'zero', offset: 16384, length: 4096 },
      { op: 'discard', offset: 8192, length: 8192 },
      { op: 'discard', offset: 16384, length: 1 },
    ]);
    await dev.close();
  });

  it('a request inside one unit, or to a writer without a boundary, is one call', async () => {
    const one = await traced(4096);
    await one.dev.write(4096, new Uint8Array(4096));
    assert.deepEqual(one.calls, [{ op: 'write', offset: 4096, length: 4096 }]);
    await one.dev.close();
    const whole = await traced(undefined);
    await whole.dev.write(100, new Uint8Array(30_000));
    await whole.dev.writeZeroes(0, SIZE);
    assert.deepEqual(whole.calls, [
      { op: 'write', offset: 100, length: 30_000 },
      { op: 'zero', offset: 0, length: SIZE },
    ]);
    await whole.dev.close();
  });

  for (const [driver, blockSize] of [
    [vdiDriver, 1024 * 1024],
    [vpcDriver, 2 * 1024 * 1024],
  ] as const) {
    it(`${driver.name}: writes spanning blocks go through one block at a time and read back after reopening`, async () => {
      const store = await created(driver, 8 * 1024 * 1024);
      const dev = await BlockDevice.open(store, { format: driver.name, readOnly: false });
      assert.equal(dev.top.image.writer?.requestBoundary, blockSize, 'the writer declares its block size');
      const data = new Uint8Array(randomBytes(blockSize * 2 + 12_345));
      const at = blockSize - 777;
      await dev.write(at, data);
      await dev.writeZeroes(at + 1000, blockSize + 5, { mayUnmap: false });
      data.fill(0, 1000, 1000 + blockSize + 5);
      // The writer itself refuses a request that crosses a block: the device is what splits.
      await assert.rejects(dev.top.image.writer!.write(blockSize - 1, new Uint8Array(2)), RangeError);
      await dev.close();
      const again = await BlockDevice.open(store, { format: driver.name, readOnly: true });
      const back = new Uint8Array(data.length);
      await again.read(at, back);
      assert.deepEqual(back, data);
      const before = new Uint8Array(at);
      await again.read(0, before);
      assert.ok(before.every((b) => b === 0));
      await again.close();
    });
  }
});

/** A new image of `driver` on a memory store (kept open across device closes). */
async function created(driver: FormatDriver, size: number): Promise<MemoryStore> {
  const store = new MemoryStore(`mem.${driver.name}`);
  await driver.create!(store, { size, options: new Map(), filename: store.name, external: noExternal });
  // Devices close their stores; these tests reopen the same bytes.
  store.close = async () => undefined;
  return store;
}
