/**
 * The capability calls BlockDevice offers jobs (snapshots, bitmaps, resize,
 * amend, check, backing, make-empty): they reach the top image under the
 * device's write lock and refuse with typed errors where the format or the
 * open mode cannot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { IoError, UnsupportedError } from '../../src/core/errors.js';
import type { ExternalFiles } from '../../src/formats/driver.js';
import { qcow2Driver } from '../../src/formats/qcow2/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { traceDriver } from '../helpers/trace-driver.js';

const MiB = 1024 * 1024;
const noExternal: ExternalFiles = { open: () => Promise.reject(new Error('no external files here')) };

async function qcow2(readOnly = false): Promise<BlockDevice> {
  const store = new MemoryStore('mem.qcow2');
  await qcow2Driver.create!(store, { size: 4 * MiB, options: new Map(), filename: store.name, external: noExternal });
  return BlockDevice.open(store, { format: 'qcow2', readOnly });
}

async function rawDevice(readOnly = false): Promise<BlockDevice> {
  return BlockDevice.open(new MemoryStore('mem.raw', new Uint8Array(MiB)), { format: 'raw', readOnly });
}

function isUnsupported(message: string): (err: unknown) => boolean {
  return (err) => err instanceof UnsupportedError && err.code === 'EUNSUPPORTED' && err.message === message;
}

describe('BlockDevice capability calls', () => {
  it('qcow2: snapshots create, apply and delete through the device', async () => {
    const dev = await qcow2();
    await dev.write(0, new Uint8Array(4096).fill(1));
    const snaps = dev.snapshots!;
    const created = await snaps.create!({ name: 'before' });
    assert.deepEqual(snaps.list().map((s) => s.name), ['before']);
    await dev.write(0, new Uint8Array(4096).fill(2));
    await snaps.apply!(created.id);
    const back = new Uint8Array(4096);
    await dev.read(0, back);
    assert.ok(back.every((b) => b === 1), 'apply brings back the snapshot content');
    await snaps.delete!({ name: 'before' });
    assert.deepEqual(dev.snapshots!.list(), []);
    await dev.close();
  });

  it('qcow2: bitmaps, resize, amend and check through the device', async () => {
    const dev = await qcow2();
    await dev.bitmaps!.add!('b0', { granularity: 65536 });
    assert.deepEqual(dev.bitmaps!.list().map((b) => b.name), ['b0']);
    await dev.write(65536, new Uint8Array(512).fill(7));
    const bits = await dev.bitmaps!.read('b0');
    assert.equal(bits[0], 0b10, 'the enabled bitmap recorded the write');
    await dev.resize(8 * MiB, { shrink: false });
    assert.equal(dev.size, 8 * MiB);
    assert.ok(dev.amendOptions?.some((o) => o.name === 'lazy_refcounts'));
    await dev.amend({ values: new Map([['lazy_refcounts', true]]), force: false });
    assert.equal((await dev.describe()).formatSpecific?.data['lazy-refcounts'], true);
    assert.equal(dev.canCheck && dev.canRepair, true);
    const counts = await dev.check({ repair: 'none', log: () => undefined });
    assert.deepEqual([counts.corruptions, counts.leaks, counts.checkErrors], [0, 0, 0]);
    await dev.setBacking(undefined);
    assert.equal(await dev.makeEmpty(), true);
    await dev.close();
  });

  it('raw: no snapshots, bitmaps, amend, check or backing; typed refusals', async () => {
    const dev = await rawDevice();
    assert.equal(dev.snapshots, undefined);
    assert.equal(dev.bitmaps, undefined);
    assert.equal(dev.amendOptions, undefined);
    assert.equal(dev.canCheck, false);
    await assert.rejects(dev.amend({ values: new Map(), force: false }), isUnsupported("Format driver 'raw' does not support option amendment"));
    await assert.rejects(dev.check({ repair: 'none', log: () => undefined }), isUnsupported('This image format does not support checks'));
    await assert.rejects(dev.setBacking({ filename: 'base.raw' }), isUnsupported('Operation not supported'));
    assert.equal(await dev.makeEmpty(), false);
    assert.equal(dev.canResize, true);
    await dev.resize(2 * MiB, { shrink: false });
    assert.equal(dev.size, 2 * MiB);
    assert.deepEqual([dev.sizeAt(0), dev.sizeAt(1)], [2 * MiB, undefined]);
    assert.equal(dev.reopenable(0), true);
    assert.equal(dev.layerOf(dev.top.files[0])?.filename, dev.filename);
    await dev.close();
  });

  it('a read-only open cannot resize, amend or change snapshots; a closed device refuses every call', async () => {
    const dev = await qcow2(true);
    assert.equal(dev.canResize, false);
    await assert.rejects(dev.resize(8 * MiB, { shrink: false }), isUnsupported('Image format driver does not support resize'));
    await assert.rejects(dev.amend({ values: new Map(), force: false }), UnsupportedError);
    assert.equal(dev.snapshots?.create, undefined);
    assert.deepEqual(dev.snapshots?.list(), []);
    await dev.close();
    await assert.rejects(dev.resize(8 * MiB, { shrink: false }), IoError);
    await assert.rejects(dev.check({ repair: 'none', log: () => undefined }), IoError);
  });

  it('a snapshot change holds the write lock: a write issued meanwhile waits for it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const t = traceDriver({
      snapshotGate: () => {
        entered();
        return gate;
      },
    });
    const dev = await BlockDevice.open(new MemoryStore('trace', new Uint8Array(MiB)), { format: 'trace', registry: t.registry, readOnly: false });
    const snap = dev.snapshots!.create!({ name: 's' });
    await inside;
    const write = dev.write(0, new Uint8Array(512));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(t.calls.map((c) => c.op), ['snapshot-create'], 'the write has not reached the writer');
    release();
    await Promise.all([snap, write]);
    assert.deepEqual(t.calls.map((c) => c.op), ['snapshot-create', 'snapshot-created', 'write']);
    await dev.close();
  });
});
