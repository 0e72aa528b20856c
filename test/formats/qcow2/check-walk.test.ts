/**
 * The pieces a qcow2 check's L2 walk is built from, on their own: batched
 * L2 reads (order, coalescing, read-ahead or not, reads past the end, read
 * errors), the bounded memo the OFLAG_COPIED pass reuses, and the compact
 * refcount map. The whole check is compared with qemu-img in
 * test/diff/check*.diff.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { IoError } from '../../../src/core/errors.js';
import type { ByteStore } from '../../../src/io/byte-store.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { L2Memo, copiedCandidate } from '../../../src/formats/qcow2/check-l2-memo.js';
import { ComputedRefcounts } from '../../../src/formats/qcow2/check-refmap.js';
import { zeroSpan } from '../../../src/formats/qcow2/empty-run.js';
import { l1Refs, readL2Tables, type L2Ref } from '../../../src/formats/qcow2/l2-batch.js';

const T = 512; // table bytes in these tests

/** A store whose table `k` (at k*T) is filled with byte k+1, logging every read. */
function tableStore(tables: number): { store: ByteStore; reads: [number, number][] } {
  const bytes = new Uint8Array(tables * T);
  for (let k = 0; k < tables; k++) bytes.fill(k + 1, k * T, (k + 1) * T);
  const mem = new MemoryStore('tables', bytes);
  const reads: [number, number][] = [];
  const store: ByteStore = Object.assign(Object.create(mem) as MemoryStore, {
    read: (offset: number, into: Uint8Array) => {
      reads.push([offset, into.length]);
      return mem.read(offset, into);
    },
  });
  return { store, reads };
}

async function collect(store: ByteStore, refs: L2Ref[], ahead = true): Promise<{ index: number; first: number; len: number }[]> {
  const out: { index: number; first: number; len: number }[] = [];
  for await (const t of readL2Tables(store, refs[Symbol.iterator](), T, { ahead })) out.push({ index: t.index, first: t.bytes[0]!, len: t.bytes.length });
  return out;
}

describe('readL2Tables', () => {
  it('hands tables out in the order asked, whatever their place in the file', async () => {
    const { store } = tableStore(8);
    const order = [5, 0, 7, 3, 3, 1];
    const got = await collect(store, order.map((k, i) => ({ index: i, offset: k * T })));
    assert.deepEqual(got, order.map((k, i) => ({ index: i, first: k + 1, len: T })));
  });

  it('reads a run of adjacent aligned tables in one request', async () => {
    const { store, reads } = tableStore(8);
    const got = await collect(store, [2, 3, 4, 6, 7].map((k) => ({ index: k, offset: k * T })));
    assert.deepEqual(got.map((t) => t.first), [3, 4, 5, 7, 8]);
    assert.deepEqual(reads, [[2 * T, 3 * T], [6 * T, 2 * T]]);
  });

  it('never merges unaligned or overlapping tables', async () => {
    const { store, reads } = tableStore(8);
    await collect(store, [{ index: 0, offset: T + 8 }, { index: 1, offset: 2 * T + 8 }, { index: 2, offset: 4 * T }, { index: 3, offset: 4 * T }]);
    assert.deepEqual(reads, [[T + 8, T], [2 * T + 8, T], [4 * T, T], [4 * T, T]]);
  });

  it('without read-ahead, reads each table alone and only when the walk asks for it', async () => {
    const { store, reads } = tableStore(8);
    const seen: number[] = [];
    for await (const t of readL2Tables(store, [1, 2, 3].map((k) => ({ index: k, offset: k * T }))[Symbol.iterator](), T, { ahead: false })) {
      seen.push(reads.length);
      assert.equal(t.bytes[0], t.index + 1);
    }
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(reads, [[T, T], [2 * T, T], [3 * T, T]]);
  });

  it('sees zeros past the end of the file and for offsets too large to read', async () => {
    const { store, reads } = tableStore(2);
    const got = await collect(store, [{ index: 0, offset: T + T / 2 }, { index: 1, offset: 2 ** 55 }]);
    assert.deepEqual(got.map((t) => t.first), [2, 0]);
    assert.equal(reads.length, 1);
  });

  it('pulls the references lazily, a window ahead of the walk', async () => {
    const { store } = tableStore(4);
    let pulled = 0;
    function* refs(): Generator<L2Ref> {
      for (let i = 0; i < 10_000; i++) {
        pulled++;
        yield { index: i, offset: (i % 4) * T };
      }
    }
    for await (const t of readL2Tables(store, refs(), T)) {
      if (t.index === 2) break;
    }
    assert.ok(pulled < 100, `pulled ${pulled}`);
  });

  it('throws a failed read when its table comes, not before, and leaves no read running', async () => {
    const mem = new MemoryStore('m', new Uint8Array(8 * T));
    let running = 0;
    const store: ByteStore = Object.assign(Object.create(mem) as MemoryStore, {
      read: async (offset: number, into: Uint8Array) => {
        running++;
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (offset === 3 * T) throw new IoError('boom');
        return mem.read(offset, into);
      },
    });
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const t of readL2Tables(store, [0, 3, 5, 7].map((k, i) => ({ index: i, offset: k * T }))[Symbol.iterator](), T)) seen.push(t.index);
    }, /boom/);
    assert.deepEqual(seen, [0]);
    assert.equal(running, 0);
  });

  it('l1Refs yields the non-zero entries with their index', () => {
    const l1 = new DataView(new ArrayBuffer(32));
    l1.setUint32(8, 0x80000000);
    l1.setUint32(12, 0x30000);
    l1.setUint32(28, 0x1000);
    const refs = [...l1Refs(l1, 4, (hi, lo) => (hi & 0xffffff) * 2 ** 32 + lo)];
    assert.deepEqual(refs, [{ index: 1, offset: 0x30000 }, { index: 3, offset: 0x1000 }]);
  });

  it('zeroSpan tells an all-zero span from one with any byte set', () => {
    const b = new Uint8Array(8192);
    assert.equal(zeroSpan(b, 0, 4096), true);
    b[4095] = 1;
    assert.equal(zeroSpan(b, 0, 4096), false);
    assert.equal(zeroSpan(b, 4096, 8192), true);
  });
});

describe('L2Memo', () => {
  it('gives back each table it kept, by L1 index and offset, to both lookups', () => {
    const memo = new L2Memo();
    memo.begin(2, 0x10000);
    memo.add(0x80000000, 0x50000);
    memo.end();
    memo.begin(5, 0x20000);
    memo.end();
    memo.begin(9, 0x30000);
    memo.add(1, 2);
    memo.add(3, 4);
    memo.end();
    assert.equal(memo.has(2, 0x10000), true);
    assert.equal(memo.has(5, 0x99999), false, 'another offset is another table');
    assert.equal(memo.has(7, 0x20000), false);
    assert.equal(memo.has(9, 0x30000), true);
    assert.deepEqual([...memo.take(2, 0x10000)!], [0x80000000, 0x50000]);
    assert.deepEqual([...memo.take(5, 0x20000)!], []);
    assert.equal(memo.take(6, 0x20000), undefined);
    assert.deepEqual([...memo.take(9, 0x30000)!], [1, 2, 3, 4]);
  });

  it('stays within its budget: past it, the table being kept is dropped and no more are kept', () => {
    const memo = new L2Memo(20);
    for (let t = 0; t < 10; t++) {
      memo.begin(t, t * 4096);
      for (let e = 0; e < 4; e++) memo.add(t, e);
      memo.end();
    }
    const kept = [...Array(10).keys()].filter((t) => memo.take(t, t * 4096) !== undefined);
    assert.deepEqual(kept, [0, 1]);
    assert.equal(memo.has(2, 2 * 4096), false);
  });

  it('keeps only entries the OFLAG_COPIED pass looks at', () => {
    assert.equal(copiedCandidate(0, 0x10000), true);
    assert.equal(copiedCandidate(0x80000000, 0), true, 'COPIED without offset (external data)');
    assert.equal(copiedCandidate(0x40000001, 0), false, 'compressed');
    assert.equal(copiedCandidate(0, 1), false, 'plain zero cluster');
  });
});

describe('ComputedRefcounts', () => {
  it('counts up to a maximum, past 65534 too, and grows its size', () => {
    const refs = new ComputedRefcounts(4);
    assert.equal(refs.increment(10, 2), true);
    assert.equal(refs.increment(10, 2), true);
    assert.equal(refs.increment(10, 2), false);
    assert.equal(refs.get(10), 2);
    assert.equal(refs.size, 11);
    refs.set(70_000, 65_533);
    for (let k = 0; k < 5; k++) assert.equal(refs.increment(70_000, 2 ** 32), true);
    assert.equal(refs.get(70_000), 65_538);
    refs.set(70_000, 3);
    assert.equal(refs.get(70_000), 3);
    assert.equal(refs.increment(5, 1), true);
    assert.equal(refs.get(10), 2, 'back from another chunk');
    refs.clear();
    assert.equal(refs.get(10), 0);
    assert.equal(refs.increment(10, 1), true);
    assert.equal(refs.get(10), 1);
  });

  it('holds memory for the clusters referenced, not for the span they cover', () => {
    const refs = new ComputedRefcounts(0);
    for (let k = 0; k < 100; k++) refs.increment(k * 2 ** 24, 65535);
    assert.ok(refs.memoryBytes <= 100 * 2 ** 17, `${refs.memoryBytes}`);
  });

  it('nextUsed finds the next referenced cluster across unreferenced chunks', () => {
    const refs = new ComputedRefcounts(0);
    const used = [3, 65_535, 65_536, 5 * 2 ** 32 + 7];
    for (const k of used) refs.increment(k, 10);
    refs.set(200_000, 70_000); // a count above 65534 is used too
    const end = 2 ** 40;
    const found: number[] = [];
    for (let i = refs.nextUsed(0, end); i < end; i = refs.nextUsed(i + 1, end)) found.push(i);
    assert.deepEqual(found, [3, 65_535, 65_536, 200_000, 5 * 2 ** 32 + 7]);
    assert.equal(refs.nextUsed(4, 65_535), 65_535, 'end is exclusive');
    assert.equal(refs.nextUsed(200_001, 2 ** 32), 2 ** 32, 'nothing before end');
    refs.set(65_535, 0);
    assert.equal(refs.nextUsed(4, end), 65_536, 'a count set back to 0 is free');
    refs.increment(2 ** 33, 10); // a chunk added after a search
    assert.equal(refs.nextUsed(200_001, end), 2 ** 33);
    refs.clear();
    assert.equal(refs.nextUsed(0, end), end);
  });
});
