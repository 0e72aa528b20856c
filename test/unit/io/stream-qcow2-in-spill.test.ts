/**
 * The offset spill of forward readers: bytes kept by offset, read and
 * released in any order, bounded by what is pending (not by what passed),
 * in memory then in a private file that leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';

import { PolicyError } from '../../../src/core/errors.js';
import { OffsetSpill } from '../../../src/io/offset-spill.js';
import { tmpDir } from '../../helpers/qemu.js';

function bytes(offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (offset + i) * 7 % 251;
  return out;
}

describe('OffsetSpill', () => {
  it('gives back any held range, across pieces, memory and file alike', async () => {
    const dir = tmpDir();
    const spill = new OffsetSpill({ memory: 3000, dir: dir.path });
    try {
      for (let off = 0; off < 10000; off += 1000) await spill.put(off, bytes(off, 1000));
      assert.ok(spill.fileBytes > 0, 'past the memory limit the file is used');
      assert.deepEqual(readdirSync(dir.path), [], 'the spill file has no name');
      assert.deepEqual(await spill.read(2500, 5000), bytes(2500, 5000));
      assert.equal(spill.size, 10000);
      spill.release(2600, 4000);
      assert.equal(spill.size, 6000);
      assert.equal(await spill.read(2500, 200), undefined, 'released bytes are gone');
      assert.deepEqual(await spill.read(2500, 100), bytes(2500, 100));
      assert.deepEqual(await spill.read(6600, 3400), bytes(6600, 3400));
      assert.equal(spill.holds(9999, 2), false, 'bytes never put are not held');
    } finally {
      await spill.close();
      dir.cleanup();
    }
  });

  it('bounds what is pending, reusing released file space', async () => {
    const dir = tmpDir();
    const spill = new OffsetSpill({ memory: 0, limit: 4096, dir: dir.path });
    try {
      for (let off = 0; off < 1024 * 1024; off += 1024) {
        await spill.put(off, bytes(off, 1024));
        if (off >= 2048) {
          assert.deepEqual(await spill.read(off - 2048, 1024), bytes(off - 2048, 1024));
          spill.release(off - 2048, 1024);
        }
      }
      assert.ok(spill.fileBytes <= 4096, `file stays within the limit (${spill.fileBytes})`);
      await assert.rejects(spill.put(2 * 1024 * 1024, new Uint8Array(4096)), (err: unknown) => {
        assert.ok(err instanceof PolicyError);
        assert.equal(err.reason, 'spill-limit');
        assert.equal(err.offset, 2 * 1024 * 1024);
        assert.match(err.message, /spill limit of 4096 bytes \(at offset 2097152\)/);
        return true;
      });
    } finally {
      await spill.close();
      dir.cleanup();
    }
  });

  it('refuses a put behind an earlier one', async () => {
    const spill = new OffsetSpill();
    await spill.put(100, new Uint8Array(10));
    await assert.rejects(spill.put(105, new Uint8Array(1)));
    await spill.close();
  });
});
