/**
 * Block status of a read-only raw image over a store that reports extents
 * (an NBD export, a sparse file): one extents call serves the whole walk,
 * every position finds its extent among thousands (a binary search), and a
 * caller that wants one extent gets one, not the rest of the image (a
 * convert from an NBD export asked for the rest of 600 extents 600 times).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { rawDriver } from '../../../src/formats/raw/index.js';
import type { ByteStore, HostExtent } from '../../../src/io/byte-store.js';
import type { OpenOptions } from '../../../src/formats/driver.js';

const RUN = 64 * 1024;
const RUNS = 2000;
const SIZE = RUN * RUNS;

/** A read-only store of RUNS runs, data and holes alternating, counting its extents calls. */
function store(): ByteStore & { calls: number } {
  const all: HostExtent[] = Array.from({ length: RUNS }, (_, i) => ({ offset: i * RUN, length: RUN, data: i % 2 === 0 }));
  return {
    name: 'extents-store',
    readOnly: true,
    calls: 0,
    async size() {
      return SIZE;
    },
    async read(_offset: number, into: Uint8Array) {
      into.fill(1);
      return into.length;
    },
    async write() {
      throw new Error('read-only');
    },
    async truncate() {
      throw new Error('read-only');
    },
    async flush() {},
    async close() {},
    async extents(offset: number, length: number) {
      this.calls++;
      const end = offset + length;
      return all
        .filter((h) => h.offset + h.length > offset && h.offset < end)
        .map((h) => {
          const start = Math.max(h.offset, offset);
          return { ...h, offset: start, length: Math.min(h.offset + h.length, end) - start };
        });
    },
  };
}

const OPEN = { readOnly: true, filename: 'extents-store', external: {} } as unknown as OpenOptions;

describe('netbench: raw block status over cached host extents', () => {
  it('gives the extent at any position, clipped to the request, from one extents call', async () => {
    const s = store();
    const image = await rawDriver.open(s, OPEN);
    for (const offset of [0, RUN - 1, 5 * RUN + 100, 1000 * RUN, SIZE - 1, 777 * RUN + RUN / 2]) {
      const [e] = await image.mapping(offset, SIZE - offset);
      const i = Math.floor(offset / RUN);
      assert.ok(e, `an extent at ${offset}`);
      assert.equal(e.offset, offset);
      assert.equal(e.length, (i + 1) * RUN - offset);
      assert.equal(e.kind, i % 2 === 0 ? 'data' : 'zero');
    }
    assert.equal(s.calls, 1);
  });

  it('builds only as many extents as the caller takes', async () => {
    const image = await rawDriver.open(store(), OPEN);
    await image.mapping(0, SIZE);
    assert.equal((await image.mapping(3 * RUN, SIZE - 3 * RUN, 1)).length, 1);
    assert.equal((await image.mapping(3 * RUN, SIZE - 3 * RUN, 5)).length, 5);
    assert.equal((await image.mapping(3 * RUN, SIZE - 3 * RUN)).length, RUNS - 3);
  });
});
