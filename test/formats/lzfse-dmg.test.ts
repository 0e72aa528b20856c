/**
 * dmg images with lzfse (ULFO) chunks, built in the test (koly trailer,
 * XML plist or resource fork, mish blocks) around streams from the test
 * encoder: vdisk reads them back byte-identical to the data put in, through
 * the CLI (convert, compare) and the SDK, with no "dmg-lzfse module is
 * missing" warning; `info` and `map` JSON equal qemu-img's (neither reads
 * chunk data). A corrupt lzfse chunk fails its reads with EIO, the rest of
 * the image still reads.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { VdiskError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { concat } from '../helpers/bytes.js';
import { vdisk } from '../helpers/cli.js';
import { encodeLzfse } from '../helpers/lzfse-fse-encode.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';
import { DMG, type DmgChunkSpec, makeDmg, pattern } from '../helpers/ro-images.js';

const SECTOR = 512;
const DATA = pattern(1024 * 1024, 11);
const dir = tmpDir('vdisk-lzfse-dmg-');
after(() => dir.cleanup());

/** Text-like data: the entropy-coded path does the work. */
const TEXT = (() => {
  const b = new Uint8Array(512 * SECTOR);
  for (let i = 0; i < b.length; i++) b[i] = 0x61 + ((i * 31 + (i >> 9)) % 23);
  return b;
})();
const MIXED = DATA.subarray(8 * SECTOR, 40 * SECTOR);
const LARGE = DATA.subarray(40 * SECTOR, 296 * SECTOR);
const ONE = DATA.subarray(296 * SECTOR, 297 * SECTOR);
/** Guest content, chunk by chunk, of the image below. */
const PIECES: readonly Uint8Array[] = [DATA.subarray(0, 8 * SECTOR), TEXT, MIXED, new Uint8Array(16 * SECTOR), LARGE, ONE];

const CHUNKS: readonly DmgChunkSpec[] = [
  { type: DMG.zlib, sectors: 8, data: DATA.subarray(0, 8 * SECTOR) },
  { type: DMG.lzfse, sectors: 512, data: TEXT },
  // one stream of every block kind, small blocks so matches cross them
  { type: DMG.lzfse, sectors: 32, stored: encodeLzfse(MIXED, ['lzvn', 'v2', 'raw', 'v1'], 4096) },
  { type: DMG.zero, sectors: 16 },
  { type: DMG.lzfse, sectors: 256, stored: encodeLzfse(LARGE, ['v2'], 40 * 1024) },
  { type: DMG.lzfse, sectors: 1, stored: encodeLzfse(ONE, ['lzvn']) },
];
const CONTENT = concat(PIECES);

function image(container: 'xml' | 'rsrc', chunks: readonly DmgChunkSpec[] = CHUNKS): Uint8Array {
  return makeDmg({ container, blocks: [{ firstSector: 0, chunks }] });
}

before(() => {
  writeFileSync(join(dir.path, 'lzfse.dmg'), image('xml'));
  writeFileSync(join(dir.path, 'lzfse-rsrc.dmg'), image('rsrc'));
  writeFileSync(join(dir.path, 'content.raw'), CONTENT);
  // the middle lzfse stream with a byte of its first block's payload broken
  const bad = CHUNKS.map((c, i) => (i === 2 ? { ...c, stored: Uint8Array.from(c.stored as Uint8Array, (b, k) => (k === 12 ? 0x70 : b)) } : c));
  writeFileSync(join(dir.path, 'bad.dmg'), image('xml', bad));
});

describe('lzfse dmg chunks', () => {
  for (const name of ['lzfse.dmg', 'lzfse-rsrc.dmg']) {
    it(`${name}: convert reads back the data put in, with no warning`, () => {
      const r = vdisk(['convert', '-O', 'raw', name, `${name}.raw`], { cwd: dir.path });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.deepEqual(new Uint8Array(readFileSync(join(dir.path, `${name}.raw`))), CONTENT);
      const c = vdisk(['compare', '-f', 'dmg', '-F', 'raw', name, 'content.raw'], { cwd: dir.path });
      assert.equal(c.status, 0, c.stderr);
      assert.equal(c.stdout, 'Images are identical.\n');
    });
  }

  it('info and map JSON equal qemu-img, and vdisk prints no module warning', (t) => {
    if (!requireQemu(t)) return;
    for (const args of [['info', '--output=json', 'lzfse.dmg'], ['map', '--output=json', 'lzfse.dmg'], ['info', 'lzfse-rsrc.dmg']]) {
      const ours = vdisk(args, { cwd: dir.path });
      const theirs = qemuImg(args, { cwd: dir.path });
      assert.equal(ours.status, theirs.status, args.join(' '));
      assert.equal(ours.stdout, theirs.stdout, args.join(' '));
      assert.equal(ours.stderr, '', args.join(' '));
    }
  });

  it('SDK reads at odd offsets and lengths across chunks', async () => {
    const dev = await BlockDevice.open(new MemoryStore('lzfse.dmg', image('xml')), { format: 'dmg', readOnly: true });
    try {
      assert.equal(dev.size, CONTENT.length);
      for (const [at, n] of [[0, CONTENT.length], [4000, 300000], [8 * SECTOR - 1, 2], [CONTENT.length - 700, 700], [555 * SECTOR + 17, 9999]] as const) {
        const buf = new Uint8Array(n);
        await dev.read(at, buf);
        assert.deepEqual(buf, CONTENT.subarray(at, at + n), `read ${at}+${n}`);
      }
    } finally {
      await dev.close();
    }
  });

  it('a corrupt lzfse chunk fails its reads with EIO; the other chunks still read', async () => {
    const r = vdisk(['convert', '-O', 'raw', 'bad.dmg', 'bad.raw'], { cwd: dir.path });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^vdisk: error while reading at byte \d+: Input\/output error\n$/);
    const dev = await BlockDevice.open(new MemoryStore('bad.dmg', readFileSync(join(dir.path, 'bad.dmg'))), { format: 'dmg', readOnly: true });
    try {
      const start = 520 * SECTOR;
      await assert.rejects(dev.read(start, new Uint8Array(SECTOR)), (err: unknown) => err instanceof VdiskError && err.code === 'EIO' && /undefined lzvn opcode/.test(String((err.cause as Error).message)));
      const after = new Uint8Array(256 * SECTOR);
      await dev.read(568 * SECTOR, after);
      assert.deepEqual(after, CONTENT.subarray(568 * SECTOR, 824 * SECTOR));
    } finally {
      await dev.close();
    }
  });
});
