/**
 * convert's qcow2 writes map a run of fresh clusters in one pass (mapRun)
 * after checking the run's entries are vacant without decoding them: the
 * tables must come out exactly as entry-by-entry writeSlot makes them, and
 * the cache must see them dirty and recently used as get() would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { TableCache } from '../../../src/formats/qcow2/cache.js';
import { mapRun, readSlot, vacantEntries, writeSlot, type Slot } from '../../../src/formats/qcow2/entries.js';
import type { Qcow2State } from '../../../src/formats/qcow2/state.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

const CS = 65536;

function state(extendedL2: boolean): Qcow2State {
  return { g: { clusterSize: CS, l2EntrySize: extendedL2 ? 16 : 8, extendedL2, l2Entries: CS / (extendedL2 ? 16 : 8), subclusterSize: extendedL2 ? CS / 32 : CS }, externalData: undefined } as unknown as Qcow2State;
}

function slotOn(table: Uint8Array, l2Off: number): Slot {
  return { l2Off, table, view: new DataView(table.buffer, table.byteOffset, table.byteLength), index: 0 };
}

describe('qcow2 run mapping', () => {
  for (const extended of [false, true]) {
    it(`maps a run as writeSlot does entry by entry${extended ? ' (extended L2)' : ''}`, async () => {
      const s = state(extended);
      const cache = new TableCache(new MemoryStore('t'), CS, 4 * CS);
      const a = slotOn(new Uint8Array(CS), 0x10000);
      const b = slotOn(new Uint8Array(CS), 0x20000);
      // Host offsets past 4 GiB exercise the high word.
      const host = 5 * 2 ** 32 - 3 * CS;
      mapRun(s, cache, a, 7, 9, host);
      for (let i = 0; i < 9; i++) writeSlot(s, cache, b, { host: host + i * CS, copied: true }, 7 + i);
      assert.ok(Buffer.from(a.table).equals(Buffer.from(b.table)));
      const e = readSlot(s, a, 15);
      assert.equal(e.host, host + 8 * CS);
      assert.equal(e.copied, true);
      // Both tables are cached dirty, as writeSlot leaves them.
      assert.equal(cache.cached(0x10000), a.table);
      assert.equal(cache.cached(0x20000), b.table);
      assert.equal(cache.dirty, true);
    });
  }

  it('calls entries vacant only when every byte of them is zero', () => {
    for (const extended of [false, true]) {
      const s = state(extended);
      const table = new Uint8Array(CS);
      const slot = slotOn(table, 0x10000);
      assert.equal(vacantEntries(s, slot, 0, 16), true);
      const size = s.g.l2EntrySize;
      // A zero flag, a subcluster bitmap, or a host offset each makes an entry in use.
      for (const byte of [7, size - 1, 3]) {
        table.fill(0);
        table[5 * size + byte] = 1;
        assert.equal(vacantEntries(s, slot, 0, 5), true);
        assert.equal(vacantEntries(s, slot, 4, 2), false);
        assert.equal(vacantEntries(s, slot, 5, 1), false);
        assert.equal(vacantEntries(s, slot, 6, 10), true);
      }
    }
  });

  it('cached() returns only cached tables, without reading', async () => {
    const store = new MemoryStore('t');
    const cache = new TableCache(store, CS, 4 * CS);
    assert.equal(cache.cached(0x30000), undefined);
    const t = new Uint8Array(CS);
    await cache.put(0x30000, t);
    assert.equal(cache.cached(0x30000), t);
  });
});
