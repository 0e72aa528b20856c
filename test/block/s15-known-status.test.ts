/**
 * Block status without awaits (BlockDevice.knownStatus) and map in batches:
 * a dense image's map walks tens of thousands of runs, and the walk now
 * answers most of them from the runs its layers' last table walks kept.
 * Every answer must be exactly blockStatus's, through a backing chain,
 * where a layer below answers only as far as the layer above leaves
 * unallocated, and where qemu looks at the host file's holes
 * (metadata-preallocated images: never answered without a look).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { emptyRunEnd } from '../../src/formats/qcow2/empty-run.js';
import { mapAll, mapBatches } from '../../src/jobs/map.js';
import { hasQemu, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s15-known-');
after(() => dir.cleanup());
const base = join(dir.path, 'base.qcow2');
const mid = join(dir.path, 'mid.qcow2');
const top = join(dir.path, 'top.qcow2');
const prealloc = join(dir.path, 'prealloc.qcow2');
const dense = join(dir.path, 'dense.qcow2');
const overlay = join(dir.path, 'overlay.qcow2');

before(() => {
  if (!hasQemu) return;
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', base, '12M']);
  // 4 KiB clusters: a 2 MiB L2 table's reach, so the chain's runs cross tables
  qemuIo(base, ['write -P 1 0 3M', 'write -z 5M 1M', 'write -c -P 2 7M 64k', 'write -P 3 9M 2M'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', base, '-F', 'qcow2', mid]);
  const midWrites: string[] = [];
  for (let off = 0; off < 12 << 20; off += 24576) midWrites.push(`write -P 4 ${off} 4k`);
  qemuIo(mid, [...midWrites, 'write -z 4M 12k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', mid, '-F', 'qcow2', top, '10M']);
  qemuIo(top, ['write -P 5 64k 64k', 'write -P 6 2M 192k', 'write -z 6M 64k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', mid, '-F', 'qcow2', overlay]);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata,cluster_size=4096', prealloc, '4M']);
  qemuIo(prealloc, ['write -P 7 8k 4k', 'write -P 8 1M 64k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', dense, '2M']);
  const denseWrites: string[] = [];
  for (let off = 0; off < 2 << 20; off += 1024) denseWrites.push(`write -P 9 ${off} 512`);
  qemuIo(dense, denseWrites, 'qcow2');
  // Many runs in every format's unit (vpc blocks are 2 MiB): 4 KiB of data every 4 MiB, 128 runs.
  const other = join(dir.path, 'other.qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', other, '256M']);
  const otherWrites: string[] = [];
  for (let off = 0; off < 256 << 20; off += 4 << 20) otherWrites.push(`write -P 10 ${off} 4k`);
  qemuIo(other, otherWrites, 'qcow2');
  for (const f of ['vmdk', 'vdi', 'vpc', 'raw', 'qed', 'parallels']) qemuImgOk(['convert', '-O', f, other, join(dir.path, `dense.${f}`)]);
});

describe('BlockDevice.knownStatus', () => {
  // `window`: how far each ask reaches, as map asks at most 1 GiB at a time (here more than one 2 MiB L2 table)
  for (const [name, path, window] of [
    ['a three-layer chain', () => top, Infinity],
    ['a three-layer chain, asked 3 MiB at a time', () => top, 3 << 20],
    ['an empty overlay, asked 3 MiB at a time', () => overlay, 3 << 20],
    ['a dense image', () => dense, Infinity],
    ['a metadata-preallocated image', () => prealloc, Infinity],
    // drivers without a memo of their own: the device keeps their runs
    ...(['vmdk', 'vdi', 'vpc', 'raw', 'qed', 'parallels'] as const).map((f) => [`a dense ${f} image`, () => join(dir.path, `dense.${f}`), Infinity] as const),
  ] as const) {
    it(`answers exactly as blockStatus, or not at all: ${name}`, async (t) => {
      if (!requireQemu(t)) return;
      const walked = await BlockDevice.open(path());
      const fresh = await BlockDevice.open(path());
      try {
        // Asked as map asks, run after run: what the device knows before each ask must be what it answers.
        let known = 0;
        let asks = 0;
        const all: { offset: number; length: number }[] = [];
        for (let offset = 0; offset < walked.size; ) {
          const rest = Math.min(walked.size - offset, window);
          for (const len of [rest, Math.min(512, rest), Math.min(4096 + 512, rest)]) {
            asks++;
            const k = walked.knownStatus(offset, len);
            if (k === undefined) continue;
            known++;
            // A second device, asked only this, answers from its own walk: the reference.
            assert.deepEqual(k, await fresh.blockStatus(offset, len), `at ${offset} +${len}`);
          }
          const st = await walked.blockStatus(offset, rest);
          all.push({ offset, length: st.length });
          offset += st.length;
        }
        if (name === 'a metadata-preallocated image') {
          // Data there may sit in a hole of the host file: only a look at the file can tell.
          for (const { offset } of all) {
            const st = await walked.blockStatus(offset, walked.size - offset);
            if (st.data) assert.equal(walked.knownStatus(offset, walked.size - offset), undefined, `data at ${offset}`);
          }
        } else {
          // each run: the walk's own ask and the two shorter ones, after the first walk of each table
          assert.ok(known >= asks * 0.9, `most asks answered without a look (${known} of ${asks})`);
        }
      } finally {
        await walked.close();
        await fresh.close();
      }
    });
  }

  it('does not know what no walk has seen', async (t) => {
    if (!requireQemu(t)) return;
    const dev = await BlockDevice.open(top);
    try {
      assert.equal(dev.knownStatus(0, dev.size), undefined);
      assert.throws(() => dev.knownStatus(0, 0), { code: 'EINVAL' });
      assert.throws(() => dev.knownStatus(dev.size, 1), { code: 'EINVAL' });
    } finally {
      await dev.close();
    }
  });

  it('reads the chain as qemu-img map does, in batches that join to map()', async (t) => {
    if (!requireQemu(t)) return;
    for (const path of [top, overlay, dense, prealloc, ...['vmdk', 'vdi', 'vpc', 'raw', 'qed', 'parallels'].map((f) => join(dir.path, `dense.${f}`))]) {
      const want = JSON.parse(qemuImgOk(['map', '--output=json', path])) as Record<string, unknown>[];
      const got = await mapAll(path);
      assert.deepEqual(
        got.map((e) => ({ start: e.start, length: e.length, depth: e.depth, present: e.present, zero: e.zero, data: e.data, ...(e.offset === undefined ? {} : { offset: e.offset }) })),
        want,
        path,
      );
      const batches: number[] = [];
      for await (const b of mapBatches(path)) batches.push(b.length);
      assert.equal(batches.reduce((a, b) => a + b, 0), got.length);
      assert.ok(batches.every((n) => n > 0 && n <= 1024), `batch sizes ${batches.join(',')}`);
    }
  });
});

describe('emptyRunEnd', () => {
  it('finds the first used entry as an entry-by-entry scan does', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (const entryBytes of [8, 16]) {
      for (let round = 0; round < 300; round++) {
        const entries = 1 + rand(2000);
        const table = new Uint8Array(entries * entryBytes);
        // sparse, dense and clustered tables; a used entry may have one non-zero byte anywhere
        const used = [0, 1, 2, 5, 50][rand(5)] as number;
        for (let u = 0; u < used; u++) table[rand(entries) * entryBytes + rand(entryBytes)] = 1 + rand(255);
        const from = rand(entries);
        const to = from + rand(entries - from + 1);
        let want = from;
        while (want < to && table.subarray(want * entryBytes, (want + 1) * entryBytes).every((b) => b === 0)) want++;
        assert.equal(emptyRunEnd(table, from, to, entryBytes), want, `${entryBytes}-byte entries, [${from}, ${to}) of ${entries}`);
      }
    }
  });
});
