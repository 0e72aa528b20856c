/** A ByteStore the caller passes in stays the caller's (no qemu-img needed). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { open } from '../../../src/block/open.js';
import { convert } from '../../../src/jobs/convert.js';
import { create } from '../../../src/jobs/create.js';
import { info } from '../../../src/jobs/info.js';
import { check } from '../../../src/jobs/check.js';
import { FileStore } from '../../../src/io/file-store.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-refs-own-');
after(() => dir.cleanup());
const p = (name: string): string => join(dir.path, name);

/** The store still answers: it was not closed for its owner. */
async function assertOpen(store: { size(): Promise<number>; read(o: number, b: Uint8Array): Promise<number> }): Promise<void> {
  assert.ok((await store.size()) > 0);
  await store.read(0, new Uint8Array(4));
}

describe('a caller\'s ByteStore stays the caller\'s', () => {
  it('open(store) then close() leaves the store open', async () => {
    await create(p('a.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const store = await FileStore.open(p('a.qcow2'));
    try {
      const dev = await open(store);
      assert.equal(dev.format, 'qcow2');
      await dev.close();
      await assertOpen(store);
      // …and it can be opened again, by the same owner.
      const again = await open(store);
      await again.close();
      await assertOpen(store);
    } finally {
      await store.close();
    }
  });

  it('a writable open of a store writes through it and leaves it open', async () => {
    const mem = new MemoryStore('mem.qcow2');
    await create(p('w.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const file = await FileStore.open(p('w.qcow2'));
    const bytes = new Uint8Array(await file.size());
    await file.read(0, bytes);
    await file.close();
    await mem.write(0, bytes);
    const dev = await open(mem, { readOnly: false, format: 'qcow2' });
    await dev.write(0, new Uint8Array(512).fill(7));
    await dev.close();
    const reopened = await open(mem, { format: 'qcow2' });
    const back = new Uint8Array(512);
    await reopened.read(0, back);
    await reopened.close();
    assert.ok(back.every((b) => b === 7));
    await assertOpen(mem);
  });

  it('a failed open leaves the store open', async () => {
    const store = new MemoryStore('junk', new Uint8Array(4096).fill(0xab));
    await assert.rejects(open(store, { format: 'qcow2' }));
    await assertOpen(store);
  });

  it('convert(store, …) and a failed convert leave the source store open', async () => {
    await create(p('s.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const store = await FileStore.open(p('s.qcow2'));
    try {
      await convert(store, p('out.raw'), { targetFormat: 'raw' });
      await assertOpen(store);
      await assert.rejects(convert(store, p('out2.qcow2'), { targetFormat: 'no-such-format' }));
      await assertOpen(store);
    } finally {
      await store.close();
    }
  });

  it('info and check on a store leave it open', async () => {
    await create(p('i.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const store = await FileStore.open(p('i.qcow2'));
    try {
      await info(store);
      await assertOpen(store);
      await check(store);
      await assertOpen(store);
    } finally {
      await store.close();
    }
  });

  it('the image locks an open took on a caller\'s store are released at close', async () => {
    await create(p('l.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const store = await FileStore.open(p('l.qcow2'), { readOnly: false });
    try {
      const dev = await open(store, { readOnly: false });
      await dev.close();
      // A writer elsewhere can now open the file (it could not while the image held its locks).
      const other = await open(p('l.qcow2'), { readOnly: false });
      await other.close();
    } finally {
      await store.close();
    }
  });
});
