/**
 * vpc limits and checks (reliability.md §1.6 H1–H3 plus vdisk's own),
 * each on a hand-corrupted image made in memory; with qemu-img, the same
 * corruption gives qemu's message.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { CorruptImageError, UnsupportedError, type VdiskError } from '../../../src/core/errors.js';
import { bitSet, runLength } from '../../../src/formats/vpc/bitmap.js';
import { roundedImageSize } from '../../../src/formats/vpc/geometry.js';
import { vpcDriver } from '../../../src/formats/vpc/index.js';
import { decodeLocator } from '../../../src/formats/vpc/parent.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { vdisk } from '../../helpers/cli.js';
import { hasQemu, qemuImg, tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-vpc-lim-');
after(() => dir.cleanup());
const noExternal = { open: () => Promise.reject(new Error('unused')) };

async function base(): Promise<Buffer> {
  const store = new MemoryStore('b.vpc');
  await vpcDriver.create!(store, { size: 8 * 1024 * 1024, options: new Map(), filename: 'b.vpc', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'vpc', readOnly: false });
  await dev.write(0, new Uint8Array(4096).fill(7));
  await dev.close();
  return Buffer.from(store.bytes());
}

function sum(b: Buffer, start: number, len: number, at: number): void {
  let s = 0;
  for (let i = start; i < start + len; i++) if (i < at || i >= at + 4) s = (s + (b[i] as number)) >>> 0;
  b.writeUInt32BE(~s >>> 0, at);
}

async function openErr(b: Buffer, readOnly = true): Promise<VdiskError> {
  try {
    const dev = await BlockDevice.open(new MemoryStore('x.vpc', b), { format: 'vpc', readOnly });
    await dev.close();
  } catch (e) {
    return e as VdiskError;
  }
  throw new Error('expected the open to fail');
}

/** Where vdisk and qemu-img (when installed) agree on the message. */
function sameAsQemu(b: Buffer, name: string): void {
  if (!hasQemu) return;
  writeFileSync(join(dir.path, name), b);
  const q = qemuImg(['info', '-f', 'vpc', name], { cwd: dir.path });
  const v = vdisk(['info', '-f', 'vpc', name], { cwd: dir.path });
  assert.notEqual(q.status, 0);
  assert.equal(v.stderr.replaceAll('vdisk:', 'qemu-img:').split('\n')[0], q.stderr.split('\n')[0]);
}

describe('vpc header checks', () => {
  it('footer checksum mismatch: CorruptImageError starting with qemu words, naming the footer and offset', async () => {
    const b = await base();
    b.writeUInt8(b.readUInt8(40) ^ 1, 40);
    const e = await openErr(b);
    assert.ok(e instanceof CorruptImageError);
    assert.equal(e.message, "Could not open 'x.vpc': Incorrect header checksum");
    assert.match(String(e.data?.['finding']), /^the VHD footer at offset 0 has checksum/);
  });

  it('dynamic header checksum mismatch: opens, as qemu-img (vpc_open does not verify it)', async () => {
    const b = await base();
    b.writeUInt8(b.readUInt8(512 + 36) ^ 1, 512 + 36);
    const dev = await BlockDevice.open(new MemoryStore('x.vpc', b), { format: 'vpc', readOnly: true });
    const got = new Uint8Array(4096);
    await dev.read(0, got);
    await dev.close();
    assert.deepEqual(got, new Uint8Array(4096).fill(7));
    if (hasQemu) {
      writeFileSync(join(dir.path, 'dynsum.vpc'), b);
      assert.equal(qemuImg(['info', '-f', 'vpc', 'dynsum.vpc'], { cwd: dir.path }).status, 0);
      assert.equal(vdisk(['info', '-f', 'vpc', 'dynsum.vpc'], { cwd: dir.path }).status, 0);
    }
  });

  it('H2: block size not a power of two ≥ 512 → "Invalid block size N" (qemu words)', async () => {
    const b = await base();
    b.writeUInt32BE(3000, 512 + 32);
    sum(b, 512, 1024, 512 + 36);
    assert.match((await openErr(b)).message, /Invalid block size 3000$/);
    sameAsQemu(b, 'h2.vpc');
  });

  it('H1: max table entries above INT_MAX/4 → "Max Table Entries too large"', async () => {
    const b = await base();
    b.writeUInt32BE(0x40000000, 512 + 28);
    sum(b, 512, 1024, 512 + 36);
    assert.match((await openErr(b)).message, /Max Table Entries too large \(1073741824\)/);
    sameAsQemu(b, 'h1.vpc');
  });

  it('a BAT is not refused for its size (up to qemu\'s INT_MAX/4 entries); one past the end of the file is corrupt', async () => {
    const b = await base();
    b.writeUInt32BE(16 * 1024 * 1024 + 1, 512 + 28);
    sum(b, 512, 1024, 512 + 36);
    const e = await openErr(b);
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /free_data_block_offset points after the end of file/);
  });

  it('H3: BAT too small for the disk → "Page table too small"; truncated file → qemu words', async () => {
    const b = await base();
    b.writeUInt32BE(1, 512 + 28);
    sum(b, 512, 1024, 512 + 36);
    assert.match((await openErr(b)).message, /Page table too small/);
    sameAsQemu(b, 'h3a.vpc');
    const t = (await base()).subarray(0, 4096);
    assert.match((await openErr(Buffer.from(t))).message, /The image has been truncated/);
  });

  it('H3: sizes above 2040 GiB are refused', async () => {
    const b = await base();
    b.write('win ', 28, 'latin1');
    b.writeBigUInt64BE(3n << 40n, 48);
    sum(b, 0, 512, 64);
    assert.ok((await openErr(b)) instanceof UnsupportedError);
  });

  it('a writable open refuses BAT entries that overlap metadata or each other', async () => {
    const b = await base();
    b.writeUInt32BE(3, 1536 + 4); // block 1 at sector 3: on top of the BAT
    const e = await openErr(b, false);
    assert.match(e.message, /overlaps/);
  });
});

describe('vpc pure helpers', () => {
  it('roundedImageSize rounds up to a CHS size, keeps the size with force_size, refuses > 2040 GiB', () => {
    assert.equal(roundedImageSize(100 * 1024 * 1024, false).totalSectors * 512, 104865792);
    assert.equal(roundedImageSize(1000, true).totalSectors * 512, 1024);
    assert.throws(() => roundedImageSize(3 * 2 ** 40, true), /too large for file format 'vpc'/);
  });

  it('sector bitmaps are read most significant bit first', () => {
    const bm = new Uint8Array([0b10100000, 0xff, 0]);
    assert.equal(bitSet(bm, 0), true);
    assert.equal(bitSet(bm, 1), false);
    assert.equal(bitSet(bm, 2), true);
    assert.deepEqual(runLength(bm, 3, 21), { set: false, sectors: 5 });
    assert.deepEqual(runLength(bm, 8, 16), { set: true, sectors: 8 });
  });

  it('locators decode to /-separated names', () => {
    assert.equal(decodeLocator('W2ru', Buffer.from('.\\dir\\p.vhd\0', 'utf16le')), 'dir/p.vhd');
    assert.equal(decodeLocator('MacX', Buffer.from('file://localhost/a%20b/p.vhd')), '/a b/p.vhd');
  });
});
