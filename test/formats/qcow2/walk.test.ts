/**
 * Walks over big sparse qcow2 images, with more L2 tables than the cache
 * holds (so read-ahead and buffer reuse both happen): map, measure and
 * compare against qemu-img, reads through BlockDevice, and the table
 * cache's prefetch on its own.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { copyFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { TableCache } from '../../../src/formats/qcow2/cache.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { vdisk } from '../../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';

const M = 1024 * 1024;
const TS = 4096;

/** A MemoryStore that counts reads and can fail them. */
class CountingStore extends MemoryStore {
  reads = 0;
  failAt: number | undefined;
  override async read(offset: number, into: Uint8Array): Promise<number> {
    this.reads++;
    if (offset === this.failAt) throw new Error(`read failed at ${offset}`);
    return super.read(offset, into);
  }
}

/** 8 tables of TS bytes, table k filled with k + 1. */
function tables(): CountingStore {
  const bytes = new Uint8Array(8 * TS);
  for (let k = 0; k < 8; k++) bytes.fill(k + 1, k * TS, (k + 1) * TS);
  return new CountingStore('tables', bytes);
}

function assertTable(t: Uint8Array, k: number): void {
  assert.equal(t.length, TS);
  assert.ok(t.every((b) => b === k + 1), `table ${k} holds ${t[0]}..${t[TS - 1]}`);
}

describe('qcow2 table cache', () => {
  it('prefetch reads tables adjacent in the file in one request, and get() then reads nothing', async () => {
    const store = tables();
    const cache = new TableCache(store, TS, 8 * TS);
    cache.prefetch([2 * TS, 0, TS, 5 * TS, TS]);
    assert.equal(store.reads, 2);
    for (const k of [0, 1, 2, 5]) assertTable(await cache.get(k * TS), k);
    assert.equal(store.reads, 2);
    cache.prefetch([0, TS]); // cached: no request
    assert.equal(store.reads, 2);
  });

  it('a failed prefetch fails the get() that meets it, and only that one', async () => {
    const store = tables();
    store.failAt = 3 * TS;
    const cache = new TableCache(store, TS, 8 * TS);
    cache.prefetch([3 * TS, 6 * TS]);
    await assert.rejects(cache.get(3 * TS), /read failed at 12288/);
    assertTable(await cache.get(6 * TS), 6);
    store.failAt = undefined;
    assertTable(await cache.get(3 * TS), 3);
  });

  it('reused buffers never show another table', async () => {
    const store = tables();
    const cache = new TableCache(store, TS, 4 * TS, { recycle: true });
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < 8; k++) {
        if (k % 3 === 0) cache.prefetch([k * TS, ((k + 1) % 8) * TS]);
        assertTable(await cache.get(k * TS), k);
        await new Promise((r) => setImmediate(r)); // let evicted buffers become reusable
      }
    }
    assert.ok(cache.size <= 4);
  });
});

/** Writes: [offset, length, pattern]; pattern 0 writes zeros (`write -z`). */
type Write = readonly [number, number, number];

/**
 * Scattered writes over a 16 TiB image: one per 2^39-byte stretch (of
 * `unit`-byte multiples), some crossing a stretch boundary.
 */
function writes(unit: number): Write[] {
  const out: Write[] = [];
  const stretch = 2 ** 39;
  for (let i = 0; i < 24; i++) {
    const off = i * stretch + ((i * 7919) % 4096) * 2 * M;
    out.push([off, (1 + (i % 3)) * unit, 1 + i]);
  }
  out.push([3 * stretch - 2 * M, 4 * M, 77]); // crosses into the next table
  out.push([5 * stretch + 4 * M, 2 * M, 0]);
  out.push([9 * stretch - 2 * M, 4 * M, 88]);
  return out;
}

describe('walks over a 16 TiB sparse qcow2 equal qemu-img', () => {
  const dir = tmpDir();
  after(() => dir.cleanup());
  const cwd = dir.path;
  // Extended L2 gets whole clusters: qemu maps the unwritten subclusters of
  // an allocated cluster with their host offset, which vdisk does not yet.
  const variants = [
    { name: 'standard', file: 'big.qcow2', opts: 'cluster_size=2M', unit: 64 * 1024 },
    { name: 'extended L2', file: 'big-ext.qcow2', opts: 'cluster_size=2M,extended_l2=on', unit: 2 * M },
  ];

  before(() => {
    if (!hasQemu) return;
    for (const v of variants) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', v.opts, join(cwd, v.file), '16T']);
      qemuIo(join(cwd, v.file), writes(v.unit).map(([o, n, p]) => (p === 0 ? `write -z ${o} ${n}` : `write -P ${p} ${o} ${n}`)), 'qcow2');
    }
  });

  for (const v of variants) {
    it(`${v.name}: map and measure`, (t) => {
      if (!requireQemu(t)) return;
      for (const args of [['map', '--output=json'], ['map'], ['measure', '--output=json', '-O', 'qcow2'], ['map', '--output=json', '--start-offset=1T', '--max-length=3T']]) {
        const ours = vdisk([...args, v.file], { cwd });
        const theirs = qemuImg([...args, v.file], { cwd });
        assert.equal(ours.stdout, theirs.stdout, args.join(' '));
        assert.equal(ours.status, theirs.status);
      }
    });

    it(`${v.name}: compare with a copy, then with a changed copy`, (t) => {
      if (!requireQemu(t)) return;
      const copy = `copy-${v.file}`;
      copyFileSync(join(cwd, v.file), join(cwd, copy));
      for (const edit of [undefined, `write -P 200 ${7 * 2 ** 39 + 6 * M + 4096} 512`]) {
        if (edit) qemuIo(join(cwd, copy), [edit], 'qcow2');
        const ours = vdisk(['compare', v.file, copy], { cwd });
        const theirs = qemuImg(['compare', v.file, copy], { cwd });
        assert.equal(ours.stdout, theirs.stdout, edit ?? 'identical');
        assert.equal(ours.status, theirs.status);
      }
    });

    it(`${v.name}: reads return what qemu-io wrote`, async (t) => {
      if (!requireQemu(t)) return;
      const dev = await BlockDevice.open(join(cwd, v.file), { readOnly: true });
      try {
        const expected = new Map<number, number>(); // 64 KiB granule → pattern (later writes win)
        for (const [o, n, p] of writes(v.unit)) for (let g = o; g < o + n; g += 65536) expected.set(g, p);
        const buf = new Uint8Array(65536);
        for (const [g, p] of [...expected].sort((a, b) => a[0] - b[0])) {
          await dev.read(g, buf);
          assert.ok(buf.every((b) => b === p), `granule at ${g}: expected ${p}, got ${buf[0]}`);
          if (!expected.has(g + 65536) && g + 65536 < dev.size) {
            await dev.read(g + 65536, buf);
            assert.ok(buf.every((b) => b === 0), `after ${g}: expected zeros`);
          }
        }
      } finally {
        await dev.close();
      }
    });
  }
});
