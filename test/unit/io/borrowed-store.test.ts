/**
 * A loan of a caller's store (io/borrowed-store.ts) passes every capability
 * the store has through, native fast paths included, and gives native
 * paths between two stores the stores themselves: an image opened on a
 * caller's FileStore copies and compares as one opened by name.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { compare, convert } from '../../../src/index.js';
import { borrowStore, lentStore } from '../../../src/io/borrowed-store.js';
import { FileStore } from '../../../src/io/file-store.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { native } from '../../../src/io/native.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-loan-');
after(() => dir.cleanup());
const at = (n: string): string => join(dir.path, n);
const M = 1024 * 1024;

/** Counts the calls of `store`'s method `name` (an own property that calls the class's method). */
function spy<T extends object>(store: T, name: keyof T & string): { calls: number } {
  const count = { calls: 0 };
  const original = (store[name] as (...a: unknown[]) => unknown).bind(store);
  Object.defineProperty(store, name, { value: (...args: unknown[]) => (count.calls++, original(...args)) });
  return count;
}

describe('borrowStore', () => {
  it('has the optional capabilities the store has, and no others; lentStore sees through it', async () => {
    const mem = new MemoryStore('m', new Uint8Array(4096));
    const view = borrowStore(mem);
    assert.equal(lentStore(view), mem);
    assert.equal(lentStore(mem), mem);
    assert.equal(view.compareWith, undefined);
    assert.equal(view.readRuns, undefined);
    await view.close();
    await assert.rejects(view.read(0, new Uint8Array(1)), /closed/);
    // The caller's store stays open.
    assert.equal(await mem.read(0, new Uint8Array(1)), 1);
  });

  it("keeps a device store's flag", async () => {
    const dev = await FileStore.open('/dev/null', { allowDevices: true });
    try {
      assert.equal(borrowStore(dev).device, true);
    } finally {
      await dev.close();
    }
  });

  it('passes the native paths through: convert and compare of FileStores use them', { skip: !native?.compareAt }, async () => {
    const bytes = Buffer.alloc(4 * M, 0x33);
    bytes.fill(0, M, 2 * M);
    writeFileSync(at('a.raw'), bytes);
    writeFileSync(at('b.raw'), bytes);
    const a = await FileStore.open(at('a.raw'));
    const b = await FileStore.open(at('b.raw'));
    try {
      const readRuns = spy(a, 'readRuns');
      const compareWith = spy(a, 'compareWith');
      await convert(a, at('out.qcow2'), { sourceFormat: 'raw', targetFormat: 'qcow2' });
      assert.ok(readRuns.calls > 0, 'convert read the source through readRuns');
      const same = await compare(a, b, { formatA: 'raw', formatB: 'raw' });
      assert.equal(same.identical, true);
      assert.ok(compareWith.calls > 0, 'compare compared through compareWith');
      assert.equal((await compare(at('out.qcow2'), b, { formatB: 'raw' })).identical, true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
