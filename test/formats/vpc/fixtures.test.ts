/**
 * VHDs qemu-img cannot make, built to the spec by ./fixtures.ts:
 * differencing disks (read as a backing chain, written with copy-on-write
 * from the parent), and Hyper-V / Azure disks whose size is not
 * CHS-aligned. Checked against libvhdi (pyvhdi) and qemu-img -f vpc.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { vdisk } from '../../helpers/cli.js';
import { hasQemu, qemuImgOk, tmpDir } from '../../helpers/qemu.js';
import { VdiskError } from '../../../src/core/errors.js';
import { buildDynamic, buildFixed, footerUniqueId, pseudoRandom, type FixtureBlock } from './fixtures.js';
import { pyvhdiDigest, sha256, usePyvhdi } from './pyvhdi.js';

const MiB = 1024 * 1024;
const BS = 2 * MiB;
const dir = tmpDir('vdisk-vpc-fix-');
const at = (n: string): string => join(dir.path, n);
after(() => dir.cleanup());

async function readAll(path: string, format?: string): Promise<Buffer> {
  const dev = await BlockDevice.open(path, { format });
  try {
    const buf = Buffer.alloc(dev.size);
    await dev.read(0, buf);
    return buf;
  } finally {
    await dev.close();
  }
}

/** Blocks holding `data` whole (every bit set). */
function fullBlocks(data: Buffer): FixtureBlock[] {
  const out: FixtureBlock[] = [];
  for (let i = 0; i * BS < data.length; i++) {
    const block = Buffer.alloc(BS);
    data.copy(block, 0, i * BS, Math.min(data.length, (i + 1) * BS));
    out.push({ index: i, present: [[0, BS / 512]], data: block });
  }
  return out;
}

const SIZE = 5 * MiB;
const parentData = pseudoRandom(SIZE, 3);
const childBlock0 = pseudoRandom(BS, 50);
/**
 * Sectors of child block 0 marked present: whole bitmap bytes, and runs
 * that start inside a byte and end at its end (0x07 = sectors 13..15 of
 * byte 1, 0x1f = 1011..1015, 0x07 = 4093..4095). Those bytes are not
 * symmetric (read least significant bit first, 0x07 would mean sectors
 * 8..10), so libvhdi reading the same bytes checks the bit order: sector n
 * is bit 7 - n % 8 of byte n / 8, the most significant bit first.
 *
 * Runs that END inside a byte are in PRESENT_MID below, checked by vdisk
 * against the model only: libvhdi (20210425, and its source as of 2022)
 * decodes VHD bitmaps with `element_value = byte_value >> (7 - bit_index)`
 * and no `& 1` (libvhdi_block_descriptor_read_sector_bitmap_data), so after
 * the first set bit of a byte it reads every later sector of that byte as
 * present, whatever its bit says.
 */
const PRESENT0: [number, number][] = [[0, 8], [13, 16], [64, 256], [1000, 1008], [1011, 1016], [4093, 4096]];
/** Runs ending inside a bitmap byte (0x40, 0x30 + 0x80, 0x02). */
const PRESENT_MID: [number, number][] = [[9, 10], [18, 20], [24, 25], [4094, 4095]];

/** What the child reads as: the parent, with the child's present sectors of block 0 on top. */
function expectedChild(present: readonly (readonly [number, number])[] = PRESENT0): Buffer {
  const e = Buffer.from(parentData);
  for (const [a, b] of present) childBlock0.copy(e, a * 512, a * 512, b * 512);
  e.fill(0x22, 2 * BS, SIZE);
  return e;
}

function writeChain(
  childName: string,
  locators: { platform: 'W2ru' | 'W2ku'; path: string }[],
  o: { parentUniqueId?: Buffer; present?: readonly (readonly [number, number])[] } = {},
): void {
  const parent = buildDynamic({ type: 3, size: SIZE, creator: 'win ', blockSize: BS, blocks: fullBlocks(parentData) });
  writeFileSync(at('parent.vhd'), parent);
  const blocks: FixtureBlock[] = [
    { index: 0, present: o.present ?? PRESENT0, data: childBlock0 },
    { index: 2, present: [[0, BS / 512]], data: Buffer.alloc(BS, 0x22) },
  ];
  const parentUniqueId = o.parentUniqueId ?? footerUniqueId(parent);
  writeFileSync(at(childName), buildDynamic({ type: 4, size: SIZE, creator: 'win ', blockSize: BS, blocks, parentName: 'parent.vhd', parentUniqueId, locators }));
}

describe('differencing VHDs read as a backing chain', () => {
  it('reads child sectors where the bitmap says so and the parent elsewhere (relative locator preferred)', async () => {
    writeChain('child.vhd', [
      { platform: 'W2ku', path: 'C:\\nowhere\\parent.vhd' },
      { platform: 'W2ru', path: '.\\parent.vhd' },
    ]);
    const expected = expectedChild();
    assert.ok((await readAll(at('child.vhd'))).equals(expected));
    const info = vdisk(['info', '--output=json', 'child.vhd'], { cwd: dir.path });
    assert.equal(info.status, 0, info.stderr);
    const j = JSON.parse(info.stdout) as Record<string, unknown>;
    assert.equal(j['backing-filename'], 'parent.vhd');
    assert.equal(j['backing-filename-format'], 'vpc');
    assert.equal(j['virtual-size'], SIZE);
    if (usePyvhdi()) {
      const d = pyvhdiDigest(at('child.vhd'), at('parent.vhd'));
      assert.equal(d.size, SIZE);
      assert.equal(d.sha256, sha256(expected), 'libvhdi reads the chain the same');
    }
    if (hasQemu) {
      // qemu-img opens a differencing disk as a dynamic one, without its parent: same size.
      const q = JSON.parse(qemuImgOk(['info', '--output=json', 'child.vhd'], { cwd: dir.path })) as Record<string, unknown>;
      assert.equal(q['virtual-size'], SIZE);
    }
  });

  it('reads sector runs that end inside a bitmap byte (model only: libvhdi misreads them)', async () => {
    writeChain('child-mid.vhd', [{ platform: 'W2ru', path: '.\\parent.vhd' }], { present: PRESENT_MID });
    const expected = expectedChild(PRESENT_MID);
    assert.ok((await readAll(at('child-mid.vhd'))).equals(expected));
    const dev = await BlockDevice.open(at('child-mid.vhd'));
    try {
      // sector 9 is the child's, 10 the parent's (depth 1), 18..19 the child's again
      assert.equal((await dev.blockStatus(9 * 512, 512)).depth, 0);
      const parentRun = await dev.blockStatus(10 * 512, 64 * 512);
      assert.deepEqual([parentRun.depth, parentRun.length], [1, 8 * 512]);
      const childRun = await dev.blockStatus(18 * 512, 64 * 512);
      assert.deepEqual([childRun.depth, childRun.length], [0, 2 * 512]);
    } finally {
      await dev.close();
    }
  });

  it('follows an absolute W2ku locator when it is the only one', async () => {
    writeChain('child-abs.vhd', [{ platform: 'W2ku', path: at('parent.vhd').replaceAll('/', '\\') }]);
    assert.ok((await readAll(at('child-abs.vhd'))).equals(expectedChild()));
  });

  it('writes copy-on-write: new blocks take the parent data, partial blocks are completed', async () => {
    writeChain('child-w.vhd', [{ platform: 'W2ru', path: '.\\parent.vhd' }]);
    const model = expectedChild();
    const dev = await BlockDevice.open(at('child-w.vhd'), { readOnly: false });
    try {
      const writes: [number, number][] = [[100 * 512 + 3, 2000], [BS + 5, 3000], [2 * BS - 10, 20], [SIZE - 700, 700]];
      for (const [i, [off, len]] of writes.entries()) {
        const data = pseudoRandom(len, 70 + i);
        await dev.write(off, data);
        data.copy(model, off);
      }
    } finally {
      await dev.close();
    }
    assert.ok((await readAll(at('child-w.vhd'))).equals(model));
    if (usePyvhdi()) assert.equal(pyvhdiDigest(at('child-w.vhd'), at('parent.vhd')).sha256, sha256(model));
  });

  it('refuses a parent whose footer unique ID is not the one the child records', async () => {
    const wrongId = Buffer.alloc(16, 0x5a);
    writeChain('stale.vhd', [{ platform: 'W2ru', path: '.\\parent.vhd' }], { parentUniqueId: wrongId });
    const corrupt = (e: unknown): boolean => e instanceof VdiskError && e.code === 'ECORRUPT' && /unique ID/.test(e.message);
    // Opening works (info shows the parent); reading through to the parent does not.
    const info = vdisk(['info', '--output=json', 'stale.vhd'], { cwd: dir.path });
    assert.equal(info.status, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as Record<string, unknown>)['backing-filename'], 'parent.vhd');
    await assert.rejects(readAll(at('stale.vhd')), corrupt);
    // Writes that need the parent's sectors are refused before the file changes.
    const before = readFileSync(at('stale.vhd'));
    const dev = await BlockDevice.open(at('stale.vhd'), { readOnly: false });
    try {
      await assert.rejects(dev.write(BS + 5, Buffer.alloc(100, 1)), corrupt);
    } finally {
      await dev.close();
    }
    assert.ok(readFileSync(at('stale.vhd')).equals(before));
    // Without the backing chain nothing is read from the parent, so nothing is checked.
    const alone = await BlockDevice.open(at('stale.vhd'), { backing: false });
    await alone.close();
    if (usePyvhdi()) assert.throws(() => pyvhdiDigest(at('stale.vhd'), at('parent.vhd')), /mismatch in identifier/, 'libvhdi refuses the pair too');
  });
});

describe('VHDs from other creators keep their recorded size', () => {
  const cases = [
    { name: 'hyperv-dyn.vhd', creator: 'win ', size: 3 * MiB + 5 * 512, fixed: false, qemuAgrees: true },
    { name: 'azure-fixed.vhd', creator: 'win ', size: 7 * MiB, fixed: true, qemuAgrees: true },
    // Azure's own creator: qemu 7.2 took the CHS size (truncating); QEMU 10.0+ and vdisk take current_size.
    { name: 'azure-wa.vhd', creator: 'wa\0\0', size: 7 * MiB, fixed: true, qemuAgrees: false },
  ];
  for (const c of cases) {
    it(`${c.name} (creator ${JSON.stringify(c.creator)}, ${c.size} bytes)`, async () => {
      const data = pseudoRandom(c.size, c.size);
      data.fill(0, MiB, 2 * MiB);
      const image = c.fixed ? buildFixed(data, c.creator) : buildDynamic({ type: 3, size: c.size, creator: c.creator, blockSize: BS, blocks: fullBlocks(data).filter((b) => b.index !== 3) });
      writeFileSync(at(c.name), image);
      const ours = await readAll(at(c.name), 'vpc');
      assert.equal(ours.length, c.size);
      assert.ok(ours.equals(data));
      if (usePyvhdi()) assert.equal(pyvhdiDigest(at(c.name)).sha256, sha256(data));
      if (!hasQemu) return;
      const q = JSON.parse(qemuImgOk(['info', '-f', 'vpc', '--output=json', c.name], { cwd: dir.path })) as Record<string, unknown>;
      if (!c.qemuAgrees) {
        assert.ok((q['virtual-size'] as number) < c.size, 'qemu-img 7.2 truncates to the CHS size');
        return;
      }
      const v = JSON.parse(vdisk(['info', '-f', 'vpc', '--output=json', c.name], { cwd: dir.path }).stdout) as Record<string, unknown>;
      assert.deepEqual(v, q);
      qemuImgOk(['convert', '-f', 'vpc', '-O', 'raw', c.name, `${c.name}.raw`], { cwd: dir.path });
      assert.ok(readFileSync(at(`${c.name}.raw`)).equals(data), 'qemu-img reads the same data');
    });
  }
});
