/**
 * A ByteStore as the output of create, convert and dd: written in place,
 * the caller's own (never closed, renamed or deleted), read back equal to
 * the source (no qemu-img needed).
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { open } from '../../src/block/open.js';
import { prepareTarget } from '../../src/block/target.js';
import { FileStore } from '../../src/io/file-store.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { compare } from '../../src/jobs/compare.js';
import { convert } from '../../src/jobs/convert.js';
import { create } from '../../src/jobs/create.js';
import { dd } from '../../src/jobs/dd.js';
import { info } from '../../src/jobs/info.js';
import { tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-jobs-store-');
after(() => dir.cleanup());
const p = (name: string): string => join(dir.path, name);
const MiB = 1 << 20;

/** A raw source with data in two places and a hole between. */
async function source(name: string): Promise<string> {
  const file = p(name);
  await create(file, { size: 4 * MiB });
  const dev = await open(file, { readOnly: false, format: 'raw' });
  await dev.write(0, new Uint8Array(65536).fill(0x5a));
  await dev.write(3 * MiB, new Uint8Array(4096).fill(0xa5));
  await dev.close();
  return file;
}

async function readAll(image: string | MemoryStore, format?: string): Promise<Uint8Array> {
  const dev = await open(image, { format });
  const buf = new Uint8Array(dev.size);
  await dev.read(0, buf);
  await dev.close();
  return buf;
}

describe('convert into a ByteStore', () => {
  for (const format of ['raw', 'qcow2', 'vmdk', 'vpc', 'vdi', 'qed']) {
    it(`to ${format}: the store reads back equal to the source and stays open`, async () => {
      const src = await source(`src-${format}.raw`);
      const store = new MemoryStore(`out.${format}`);
      const result = await convert(src, store, { sourceFormat: 'raw', targetFormat: format });
      assert.equal(result.target, `out.${format}`);
      assert.equal(result.format, format);
      assert.deepEqual(await compare(src, store, { formatA: 'raw', formatB: format, strict: false }).then((r) => r.identical), true);
      // vpc rounds the size up to its disk geometry: the rest reads as zeros.
      const [back, want] = [await readAll(store, format), await readAll(src, 'raw')];
      assert.ok(Buffer.from(back.subarray(0, want.length)).equals(want) && back.subarray(want.length).every((b) => b === 0));
      // Still the caller's: it answers after the job.
      assert.ok((await store.size()) > 0);
    });
  }

  it('an encrypted target gets the key secrets of its create options as open options', async () => {
    const src = await source('src-enc.raw');
    const store = new MemoryStore('enc.qcow2');
    const secrets = { sec0: 'passphrase' };
    await convert(src, store, { sourceFormat: 'raw', targetFormat: 'qcow2', options: 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', secrets });
    const dev = await open(store, { format: 'qcow2', runtime: [['encrypt.key-secret', 'sec0']], secrets });
    const back = new Uint8Array(65536);
    await dev.read(0, back);
    await dev.close();
    assert.ok(back.every((b) => b === 0x5a));
  });

  it('an existing store is emptied first: old bytes do not show through', async () => {
    const src = await source('src-old.raw');
    const store = new MemoryStore('dirty.raw', new Uint8Array(8 * MiB).fill(0xee));
    await convert(src, store, { sourceFormat: 'raw', targetFormat: 'raw' });
    assert.equal(await store.size(), 4 * MiB);
    assert.deepEqual(store.bytes(), await readAll(src, 'raw'));
  });

  it('a FileStore target is written in place: same inode, nothing else in the directory, left open', async () => {
    const src = await source('src-fs.raw');
    const name = p('in-place.qcow2');
    writeFileSync(name, 'old contents');
    const ino = statSync(name).ino;
    const store = await FileStore.open(name, { readOnly: false });
    try {
      const before = readdirSync(dir.path).sort();
      await convert(src, store, { sourceFormat: 'raw', targetFormat: 'qcow2' });
      assert.deepEqual(readdirSync(dir.path).sort(), before, 'no temporary file, nothing renamed or removed');
      assert.equal(statSync(name).ino, ino);
      assert.ok((await store.size()) > 0, 'the store is still open');
    } finally {
      await store.close();
    }
    assert.equal((await compare(src, name, { formatA: 'raw', formatB: 'qcow2' })).identical, true);
  });

  it('a failed convert into a store leaves the store open and the directory as it was', async () => {
    const name = p('failing.raw');
    writeFileSync(name, 'keep me');
    const store = await FileStore.open(name, { readOnly: false });
    try {
      const before = readdirSync(dir.path).sort();
      await assert.rejects(Promise.resolve(convert(p('missing.raw'), store)), { code: 'ENOENT' });
      await assert.rejects(Promise.resolve(convert(await source('src-fail.raw'), store, { targetFormat: 'nosuch' })), { code: 'EFORMAT' });
      assert.deepEqual(readdirSync(dir.path).sort(), [...before, 'src-fail.raw'].sort());
      assert.equal(await store.size(), 'keep me'.length, 'refused before anything was written');
    } finally {
      await store.close();
    }
  });

  it('a store that is the source file itself is refused as a write-lock conflict', async () => {
    const src = await source('self.raw');
    const store = await FileStore.open(src, { readOnly: false });
    try {
      await assert.rejects(Promise.resolve(convert(src, store, { sourceFormat: 'raw' })), { code: 'EBUSY' });
      assert.equal(await store.size(), 4 * MiB);
    } finally {
      await store.close();
    }
  });

  it('an image of several files (a data file) cannot go into a store, and the store is untouched', async () => {
    const src = await source('src-df.raw');
    const store = new MemoryStore('df.qcow2', new Uint8Array([1, 2, 3]));
    const before = readdirSync(dir.path).sort();
    await assert.rejects(Promise.resolve(convert(src, store, { targetFormat: 'qcow2', options: `data_file=${p('df.data')}` })), { code: 'EUNSUPPORTED' });
    assert.deepEqual(store.bytes(), new Uint8Array([1, 2, 3]));
    assert.deepEqual(readdirSync(dir.path).sort(), before);
  });
});

describe('create and dd into a ByteStore', () => {
  it('create into a MemoryStore gives an image info reads back', async () => {
    const store = new MemoryStore('made.qcow2');
    const result = await create(store, { format: 'qcow2', size: '64M', options: 'cluster_size=4096' });
    assert.deepEqual(result, { filename: 'made.qcow2', format: 'qcow2', size: 64 * MiB });
    const [top] = await info(store);
    assert.equal(top?.format, 'qcow2');
    const dev = await open(store);
    assert.equal(dev.size, 64 * MiB);
    assert.equal(dev.format, 'qcow2');
    await dev.close();
  });

  it('create into a FileStore keeps the inode and adds no file', async () => {
    const name = p('made.vdi');
    writeFileSync(name, '');
    const ino = statSync(name).ino;
    const store = await FileStore.open(name, { readOnly: false });
    const before = readdirSync(dir.path).sort();
    await create(store, { format: 'vdi', size: MiB });
    assert.deepEqual(readdirSync(dir.path).sort(), before);
    assert.ok((await store.size()) > 0);
    await store.close();
    assert.equal(statSync(name).ino, ino);
    const dev = await open(name);
    assert.equal(dev.format, 'vdi');
    await dev.close();
  });

  it('dd into a MemoryStore copies the range asked for', async () => {
    const src = await source('dd-src.raw');
    const store = new MemoryStore('dd.raw');
    const result = await dd(src, store, { sourceFormat: 'raw', blockSize: 65536, count: 2 });
    assert.equal(result.bytes, 2 * 65536);
    assert.deepEqual(store.bytes(), (await readAll(src, 'raw')).subarray(0, 2 * 65536));
  });

  it('one store is one job\'s output at a time', async () => {
    const store = new MemoryStore('claimed');
    const first = prepareTarget(store);
    await first.openMain(undefined);
    await assert.rejects(prepareTarget(store).openMain(undefined), { code: 'EBUSY' });
    await first.commit();
    const again = prepareTarget(store);
    await again.openMain(undefined);
    await again.abort();
    assert.equal(await store.size(), 0, 'abort removes nothing from a store');
  });
});
