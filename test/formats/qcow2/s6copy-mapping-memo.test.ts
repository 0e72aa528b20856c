/**
 * A read-only qcow2 answers one-extent mapping asks from the complete runs
 * of its last walk (block status walks a chain run by run; formats/run-memo.ts):
 * the answers, and knownExtent's, must be exactly those of a fresh walk,
 * for every start offset and length, forward and backward, including runs
 * cut short by the asked length (never reused), compressed clusters asked
 * from inside, and host offsets of data and allocated zero runs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { clipExtent } from '../../../src/formats/run-memo.js';
import type { Extent } from '../../../src/formats/driver.js';
import { hasQemu, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-s6copy-memo-');
after(() => dir.cleanup());
const image = join(dir.path, 'm.qcow2');

before(() => {
  if (!hasQemu) return;
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', image, '8M']);
  qemuIo(image, ['write -P 1 64k 200k', 'write -z 1M 300k', 'write -P 2 2M 8k', 'write -P 3 2052k 4k', 'write -c -P 4 3M 4k', 'write -P 5 7M 1M', 'write -z -u 7340032 8k'], 'qcow2');
});

describe('qcow2 one-extent mapping memo', () => {
  it('answers as a fresh walk does, at every offset and length', async (t) => {
    if (!requireQemu(t)) return;
    const memo = await BlockDevice.open(image);
    try {
      const img = memo.top.image;
      const size = img.virtualSize;
      for (const stride of [4096, 12288, 65536 + 512]) {
        for (const span of [4096, 100_000, 1 << 20, size]) {
          for (let off = 0; off < size; off += stride) {
            const len = Math.min(span, size - off);
            const known = img.knownExtent?.(off, len);
            const got = await img.mapping(off, len, 1);
            // Asking two extents never uses the memo: a fresh walk's first extent.
            const fresh = (await img.mapping(off, len, 2)).slice(0, 1);
            assert.deepEqual(got, fresh, `at ${off} +${len}`);
            if (known) assert.deepEqual([known], fresh, `known at ${off} +${len}`);
          }
        }
      }
    } finally {
      await memo.close();
    }
  });

  it('answers backward and repeated asks from the runs it keeps', async (t) => {
    if (!requireQemu(t)) return;
    const memo = await BlockDevice.open(image);
    try {
      const img = memo.top.image;
      const size = img.virtualSize;
      await img.mapping(0, size, 1);
      let hits = 0;
      for (const off of [3 * 4096, 0, 2 * 1024 * 1024 + 4096, 64 * 1024 + 100, 3 * 1024 * 1024 + 512, 3 * 1024 * 1024 + 512, 5 * 1024 * 1024]) {
        const known = img.knownExtent?.(off, size - off);
        const fresh = (await img.mapping(off, size - off, 2)).slice(0, 1);
        if (known) {
          hits++;
          assert.deepEqual([known], fresh, `at ${off}`);
        }
        assert.deepEqual(await img.mapping(off, size - off, 1), fresh, `at ${off}`);
      }
      assert.ok(hits >= 5, `the first walk's runs answer most asks (${hits})`);
    } finally {
      await memo.close();
    }
  });

  it('clips runs, moving host offsets, and leaves compressed extents alone', () => {
    const store = {} as never;
    const data: Extent = { kind: 'data', offset: 4096, length: 8192, store, hostOffset: 65536 };
    assert.deepEqual(clipExtent(data, 8192, 100_000), { kind: 'data', offset: 8192, length: 4096, store, hostOffset: 69632 });
    assert.deepEqual(clipExtent(data, 8192, 1000), { kind: 'data', offset: 8192, length: 1000, store, hostOffset: 69632 });
    assert.equal(clipExtent(data, 12288, 10), undefined);
    assert.equal(clipExtent(data, 0, 10_000), undefined);
    assert.deepEqual(clipExtent({ kind: 'unallocated', offset: 0, length: 10 }, 4, 100), { kind: 'unallocated', offset: 4, length: 6 });
    assert.equal(clipExtent({ kind: 'compressed', offset: 0, length: 4096, hostOffset: 1, hostLength: 2, unitOffset: 0 }, 0, 10), undefined);
  });
});
