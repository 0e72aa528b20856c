/**
 * The shared pieces of the read-only network stores, on their own: the
 * read-only base (here under BlobStore: clamped reads, refused writes, a
 * closed store), the one limiter and the range queue built on it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlobStore } from '../../src/io/blob-store.js';
import { Limiter } from '../../src/io/http/limiter.js';
import { RangeQueue } from '../../src/io/http/range-queue.js';

describe('net-fold: the read-only store base (BlobStore)', () => {
  const bytes = new Uint8Array(1000).map((_, i) => (i % 250) + 1);

  it('reads what lies inside, zeros past the end, and slices nothing past it', async () => {
    const asked: [number, number][] = [];
    const blob = new Blob([bytes]);
    const store = new BlobStore({ size: blob.size, slice: (a, b) => (asked.push([a ?? 0, b ?? 0]), blob.slice(a, b)) }, 'b.raw');
    const into = new Uint8Array(64).fill(7);
    assert.equal(await store.read(990, into), 10);
    assert.deepEqual(into.subarray(0, 10), bytes.subarray(990));
    assert.ok(into.subarray(10).every((b) => b === 0));
    assert.equal(await store.read(5000, into.fill(7)), 0);
    assert.ok(into.every((b) => b === 0));
    assert.deepEqual(asked, [[990, 1000]]);
    assert.equal(await store.size(), 1000);
  });

  it('refuses writes with its own words, and everything once closed', async () => {
    const store = new BlobStore(new Blob([bytes]), 'b.raw');
    await assert.rejects(store.write(0, bytes), (e: Error & { code?: string }) => e.code === 'EUNSUPPORTED' && e.message === "'b.raw' is read-only (a Blob)");
    await assert.rejects(store.truncate(0), { code: 'EUNSUPPORTED' });
    await store.close();
    await store.close();
    await assert.rejects(store.read(0, new Uint8Array(1)), { message: "'b.raw' is closed" });
    await assert.rejects(store.size(), { message: "'b.raw' is closed" });
  });
});

describe('net-fold: one limiter', () => {
  it('runs at most its slots at once, in order, and frees a slot when a task fails', async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const task = (i: number) => async (): Promise<number> => {
      running++;
      most = Math.max(most, running);
      order.push(i);
      await new Promise((r) => setImmediate(r));
      running--;
      if (i === 1) throw new Error('boom');
      return i;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => limiter.run(task(i))));
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('the range queue coalesces the adjacent reads that wait for its slot', async () => {
    const object = new Uint8Array(4096).map((_, i) => i & 0xff);
    const fetched: [number, number][] = [];
    const queue = new RangeQueue(async (start, end, deliver) => {
      fetched.push([start, end]);
      await new Promise((r) => setImmediate(r));
      deliver(object.subarray(start, end), 0);
    }, new Limiter(1));
    const bufs = [0, 1, 2, 3].map(() => new Uint8Array(1024));
    await Promise.all(bufs.map((b, i) => queue.read(i * 1024, b)));
    bufs.forEach((b, i) => assert.deepEqual(b, object.subarray(i * 1024, (i + 1) * 1024)));
    assert.deepEqual(fetched, [[0, 1024], [1024, 4096]]);
  });
});
