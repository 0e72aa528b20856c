/**
 * Parallels check and repair as parallels_co_check (qemu-img 7.2): the
 * dirty flag, BAT entries past the end of the file, space leaked after the
 * last cluster; the open-time refusals of iotest 076 and of the format
 * extension; the read/write refusal of an image not closed cleanly.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSame, both, hasBzip2, poke, sample, u32 } from './parallels-kit.js';

const dir = tmpDir('vdisk-parallels-check-');
after(() => dir.cleanup());

const INUSE = 44;
const BAT = 64;
let n = 0;

/** A directory with `img` (64 KiB clusters, three allocated) after `damage`. */
function damaged(damage: (img: string) => void): string {
  const d = join(dir.path, `d${n++}`);
  mkdirSync(d);
  const img = join(d, 'img');
  qemuImgOk(['create', '-q', '-f', 'parallels', '-o', 'cluster_size=64k', img, '4M']);
  qemuIo(img, ['write -P 0x11 0 100k', 'write -P 0x22 1M 4k'], 'parallels');
  damage(img);
  return d;
}

const CASES: [string, (img: string) => void][] = [
  ['not closed correctly (inuse set)', (img) => poke(img, INUSE, u32(0x746f6e59))],
  ['a BAT entry past the end of the file', (img) => poke(img, BAT + 8, u32(0x10))],
  ['space leaked after the last cluster', (img) => writeFileSync(img, Buffer.concat([readFileSync(img), Buffer.alloc(100_000, 7)]))],
  ['dirty, a BAT entry past the end and a leak', (img) => {
    poke(img, INUSE, u32(0x746f6e59));
    poke(img, BAT + 4 * 40, u32(0x100));
    writeFileSync(img, Buffer.concat([readFileSync(img), Buffer.alloc(70_000, 7)]));
  }],
];

describe('parallels check and repair', () => {
  for (const [what, damage] of CASES) {
    for (const r of [[], ['-r', 'leaks'], ['-r', 'all']]) {
      for (const out of [[], ['--output=json']]) {
        it(`${what}: check ${[...r, ...out].join(' ')} prints, counts and repairs as qemu-img`, (t) => {
          if (!requireQemu(t)) return;
          assertSame(damaged(damage), ['check', ...r, ...out, 'img']);
        });
      }
    }
  }

  it('a fresh image whose BAT fills more than one cluster reports leaks, and -r leaks cuts it as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const d = join(dir.path, 'small');
    mkdirSync(d);
    qemuImgOk(['create', '-q', '-f', 'parallels', '-o', 'cluster_size=512', join(d, 'img'), '64M']);
    assertSame(d, ['check', 'img']);
    assertSame(d, ['check', '-r', 'leaks', 'img']);
  });

  it('an image not closed correctly reads, but refuses a read/write open', (t) => {
    if (!requireQemu(t)) return;
    const d = damaged((img) => poke(img, INUSE, u32(0x746f6e59)));
    qemuImgOk(['create', '-q', '-f', 'raw', join(d, 's.raw'), '4M']);
    assertSame(d, ['info', 'img']);
    assertSame(d, ['convert', '-O', 'raw', 'img', 'out.raw']);
    const r = both(d, ['convert', '-n', '-O', 'parallels', 's.raw', 'img']);
    assert.equal(r.vdisk.stderr, "vdisk: Could not open 'img': parallels: Image was not closed correctly; cannot be opened read/write\n");
    assert.deepEqual(r.vdisk, r.qemu);
  });
});

describe('parallels open refusals (iotest 076, format extension)', () => {
  for (const [what, off, bytes, message] of [
    ['negative catalog size', 32, u32(0xffffffff), 'Catalog too large'],
    ['catalog allocation overflow', 32, u32(0x40000001), 'Catalog too large'],
    ['zero sectors per track', 28, u32(0), 'Invalid image: Zero sectors per track'],
    ['too big cluster', 28, u32(0x7fffffff), 'Invalid image: Too big cluster'],
    ['bad version', 16, u32(3), 'Image not in Parallels format'],
  ] as const) {
    it(`${what}: "${message}"`, (t) => {
      if (!requireQemu(t)) return;
      const d = damaged((img) => poke(img, off, [...bytes]));
      const r = both(d, ['info', '-f', 'parallels', 'img']);
      assert.equal(r.vdisk.stderr, `vdisk: Could not open 'img': ${message}\n`);
      assert.deepEqual(r.vdisk, r.qemu);
    });
  }

  /** The sample with its extension cluster (at 2 MiB) changed by `edit`, its MD5 fixed unless `keepSum`. */
  function extension(edit: (cluster: Buffer) => void, keepSum = false): string {
    const d = join(dir.path, `x${n++}`);
    mkdirSync(d);
    const img = sample('parallels-with-bitmap', d, 'img');
    const buf = readFileSync(img);
    const cluster = buf.subarray(2 * 1024 * 1024, 3 * 1024 * 1024);
    edit(cluster);
    if (!keepSum) createHash('md5').update(cluster.subarray(24)).digest().copy(cluster, 8);
    writeFileSync(img, buf);
    return d;
  }

  for (const [what, edit, keepSum] of [
    ['a wrong extension magic', (c: Buffer) => c.writeUInt32LE(0x12345678, 0), false],
    ['a wrong checksum', (c: Buffer) => c.writeUInt8(1, 100), true],
    ['feature flags', (c: Buffer) => c.writeUInt32LE(1, 32), false],
    ['a feature bigger than the cluster', (c: Buffer) => c.writeUInt32LE(0x200000, 40), false],
    ['an unknown feature', (c: Buffer) => c.writeUInt32LE(0x1234, 24), false],
    ['a bitmap size other than the disk size', (c: Buffer) => c.writeUInt32LE(5, 48), false],
    ['an L1 table past the feature data', (c: Buffer) => c.writeUInt32LE(0x10000, 76), false],
    ['an L1 size the bitmap does not have', (c: Buffer) => c.writeUInt32LE(2, 76), false],
    ['a feature too small for a bitmap', (c: Buffer) => c.writeUInt32LE(16, 40), false],
  ] as const) {
    it(`format extension with ${what}: refused as qemu-img refuses it`, { skip: hasBzip2 ? false : 'needs bzip2' }, (t) => {
      if (!requireQemu(t)) return;
      const d = extension(edit, keepSum);
      const r = both(d, ['info', 'img']);
      assert.equal(r.vdisk.status, 1);
      assert.deepEqual(r.vdisk, r.qemu);
    });
  }

  it('a read/write open warns that the extension is ignored (check -r all)', { skip: hasBzip2 ? false : 'needs bzip2' }, (t) => {
    if (!requireQemu(t)) return;
    const d = join(dir.path, 'rw');
    mkdirSync(d);
    sample('parallels-with-bitmap', d, 'img');
    copyFileSync(join(d, 'img'), join(d, 'orig'));
    const r = both(d, ['check', '-r', 'all', 'img']);
    assert.match(r.vdisk.stderr, /^vdisk: warning: Format Extension ignored in RW mode\n/);
    assert.deepEqual(r.vdisk, r.qemu);
    // deliberately unlike qemu-img, which leaves ext_off naming the cluster it cut off
    const ours = readFileSync(join(r.vdir, 'img'));
    assert.equal(ours.readBigUInt64LE(56), 0n);
    assert.equal(both(r.vdir, ['info', 'img']).qemu.status, 0);
  });
});
