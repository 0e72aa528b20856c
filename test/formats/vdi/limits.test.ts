/**
 * vdi limits and checks (reliability.md §1.5 D1–D3 plus vdisk's own):
 * header fields validated before the block map is read, and the pure
 * block-map checker a future `check` will reuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { CorruptImageError, UnsupportedError, type VdiskError } from '../../../src/core/errors.js';
import { LIMITS } from '../../../src/core/limits.js';
import { checkBlockMap, VDI_DISCARDED, VDI_UNALLOCATED } from '../../../src/formats/vdi/block-map.js';
import { vdiDriver } from '../../../src/formats/vdi/index.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

const noExternal = { open: () => Promise.reject(new Error('unused')) };

async function base(): Promise<Buffer> {
  const store = new MemoryStore('b.vdi');
  await vdiDriver.create!(store, { size: 4 * 1024 * 1024, options: new Map(), filename: 'b.vdi', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'vdi', readOnly: false });
  await dev.write(2 * 1024 * 1024, new Uint8Array(512).fill(9));
  await dev.close();
  return Buffer.from(store.bytes());
}

async function openErr(b: Buffer, readOnly = true): Promise<VdiskError> {
  try {
    const dev = await BlockDevice.open(new MemoryStore('x.vdi', b), { format: 'vdi', readOnly });
    await dev.close();
  } catch (e) {
    return e as VdiskError;
  }
  throw new Error('expected the open to fail');
}

describe('vdi header checks', () => {
  it('D1: too many blocks and huge disk sizes are refused before any allocation', async () => {
    const b = await base();
    b.writeUInt32LE(LIMITS.vdiMaxBlocksInImage + 1, 0x180);
    assert.match((await openErr(b)).message, /too many blocks/);
    const c = await base();
    c.writeBigUInt64LE(1n << 62n, 0x170);
    assert.ok((await openErr(c)) instanceof UnsupportedError);
  });

  it('a block map larger than the page cache is not refused for its size; one past the end of the file is corrupt', async () => {
    const b = await base();
    b.writeUInt32LE(LIMITS.vdiBlockMapCacheBytes / 4 + 1, 0x180);
    const e = await openErr(b);
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /block map/);
  });

  it('block map beyond the file, header size, allocated count → CorruptImageError', async () => {
    const b = await base();
    b.writeUInt32LE(0x7ffffe00, 0x154);
    assert.ok((await openErr(b)) instanceof CorruptImageError);
    const c = await base();
    c.writeUInt32LE(0x10, 0x48);
    assert.match((await openErr(c)).message, /header size/);
    const d = await base();
    d.writeUInt32LE(5, 0x184);
    assert.match((await openErr(d)).message, /allocated blocks/);
  });

  it('D3: a writable open refuses a block map where a new block would land on a used one', async () => {
    const b = await base();
    b.writeUInt32LE(0, 0x200 + 4 * 3); // block 3 → image block 0, already used by block 2
    const e = await openErr(b, false);
    assert.match(e.message, /also used by/);
    const ro = await BlockDevice.open(new MemoryStore('x.vdi', b), { format: 'vdi' });
    await ro.close();
  });

  it('discarded blocks read as zeros', async () => {
    const b = await base();
    b.writeUInt32LE(VDI_DISCARDED, 0x200 + 4 * 2);
    const dev = await BlockDevice.open(new MemoryStore('x.vdi', b), { format: 'vdi' });
    const buf = new Uint8Array(512).fill(1);
    await dev.read(2 * 1024 * 1024, buf);
    assert.ok(buf.every((x) => x === 0));
    assert.equal((await dev.blockStatus(2 * 1024 * 1024, 512)).zero, true);
    await dev.close();
  });
});

describe('checkBlockMap', () => {
  it('reports what qemu-img check reports', () => {
    const map = Uint32Array.from([0, 7, 0, VDI_UNALLOCATED, VDI_DISCARDED, 1]);
    const r = checkBlockMap(map, 6, 3);
    assert.deepEqual(r.findings.map((f) => f.message), ['block index 1 too large, is 7', 'block index 0 also used by 0']);
    assert.equal(checkBlockMap(map, 6, 2).findings[2]?.message, 'allocated blocks mismatch, is 3, should be 2');
    assert.equal(r.allocated, 3);
    assert.deepEqual(checkBlockMap(Uint32Array.from([1, 0]), 2, 2).findings, []);
    assert.equal(checkBlockMap(Uint32Array.from([1]), 2, 1, { forWrite: true }).findings[0]?.kind, 'beyond-allocated');
  });
});
