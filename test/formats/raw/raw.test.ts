/** The raw driver and the block device over memory stores: model-based write/read checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { InvalidArgumentError, VdiskError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { rawDriver } from '../../../src/formats/raw/index.js';
import { rng } from '../../helpers/fuzz.js';

async function rawDevice(size: number, fill?: number): Promise<{ dev: BlockDevice; store: MemoryStore }> {
  const store = new MemoryStore('mem.raw', fill === undefined ? new Uint8Array(size) : new Uint8Array(size).fill(fill));
  return { dev: await BlockDevice.open(store, { format: 'raw', readOnly: false }), store };
}

describe('raw driver', () => {
  it('creates whole sectors and allocates the first block (preallocation=off)', async () => {
    const store = new MemoryStore('new.raw');
    await rawDriver.create!(store, { size: 1000, options: new Map(), filename: 'new.raw', external: { open: () => Promise.reject(new Error('no')) } });
    assert.equal(await store.size(), 1024);
  });

  it('refuses a bad preallocation mode', async () => {
    const store = new MemoryStore('new.raw');
    await assert.rejects(
      rawDriver.create!(store, { size: 512, options: new Map([['preallocation', 'bad']]), filename: 'x', external: { open: () => Promise.reject(new Error('no')) } }),
      { message: 'invalid parameter value: bad' },
    );
  });

  it('matches a plain byte model under random writes, zero writes and reads', async () => {
    const size = 256 * 1024;
    const { dev } = await rawDevice(size);
    const model = new Uint8Array(size);
    const next = rng(7);
    for (let i = 0; i < 300; i++) {
      const off = Math.floor(next() * size);
      const len = Math.min(size - off, 1 + Math.floor(next() * 20000));
      if (next() < 0.7) {
        const data = new Uint8Array(len).map(() => Math.floor(next() * 256));
        await dev.write(off, data);
        model.set(data, off);
      } else {
        await dev.writeZeroes(off, len);
        model.fill(0, off, off + len);
      }
    }
    const out = new Uint8Array(size);
    await dev.read(0, out);
    assert.deepEqual(out, model);
    await dev.close();
  });

  it('reports zero and data runs through block status', async () => {
    const { dev } = await rawDevice(64 * 1024);
    await dev.write(8192, new Uint8Array(100).fill(1));
    const first = await dev.blockStatus(0, 64 * 1024);
    assert.deepEqual([first.offset, first.length, first.zero, first.data, first.present], [0, 8192, true, false, true]);
    const second = await dev.blockStatus(8192, 56 * 1024);
    assert.deepEqual([second.length, second.zero, second.data], [4096, false, true]);
    await dev.close();
  });

  it('checks request bounds', async () => {
    const { dev } = await rawDevice(4096);
    await assert.rejects(dev.read(4000, new Uint8Array(200)), InvalidArgumentError);
    await assert.rejects(dev.write(-1, new Uint8Array(1)), InvalidArgumentError);
    await assert.rejects(dev.read(0.5, new Uint8Array(1)), InvalidArgumentError);
    await dev.close();
  });

  it('refuses writes through a read-only open', async () => {
    const store = new MemoryStore('ro.raw', new Uint8Array(4096));
    const dev = await BlockDevice.open(store, { format: 'raw' });
    await assert.rejects(dev.write(0, new Uint8Array(1)), (e: unknown) => e instanceof VdiskError && e.code === 'EPERM');
    await dev.close();
  });

  it('refuses to write another format\'s header into a probed raw image, warning as qemu-img', async () => {
    const store = new MemoryStore('probed.raw', new Uint8Array(4096));
    const warnings: string[] = [];
    const dev = await BlockDevice.open(store, { readOnly: false, onWarning: (w) => warnings.push(w.message) });
    assert.match(warnings[0] ?? '', /^WARNING: Image format was not specified for 'probed\.raw' and probing guessed raw\.\n {9}Automatically detecting/);
    assert.equal(dev.top.probedRaw, true);
    const qcow2Head = new Uint8Array(512);
    qcow2Head.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    if (dev.layers.length === 1 && (await import('../../../src/block/registry.js')).defaultRegistry.find('qcow2')) {
      await assert.rejects(dev.write(0, qcow2Head), (e: unknown) => e instanceof VdiskError && e.code === 'EPERM');
    }
    await dev.write(0, new Uint8Array(512).fill(7)); // ordinary data is fine
    await dev.close();
  });
});
