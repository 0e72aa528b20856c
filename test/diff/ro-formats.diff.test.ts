/**
 * The read-only formats (dmg, bochs, cloop) against qemu-img: QEMU's sample
 * images and images built to the formats' specifications read
 * byte-identical, `info` (human and JSON) and `map` equal, `compare` sees
 * them equal to their raw copies, and every command that writes is refused
 * with qemu-img's message and exit code.
 *
 * Debian's qemu-img is built without its dmg-bz2 and dmg-lzfse modules: it
 * prints "module … not found" lines (left out here) and cannot read bzip2
 * or lzfse chunks, which vdisk decodes (checked against the data the image
 * was built from instead; lzfse in test/formats/lzfse-dmg.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';
import { DMG, makeBochs, makeCloop, makeDmg, pattern } from '../helpers/ro-images.js';

const SAMPLES = fileURLToPath(new URL('../../../test/fixtures/samples/', import.meta.url));
const dir = tmpDir('vdisk-ro-');
after(() => dir.cleanup());

const DATA = pattern(256 * 1024, 3);

/** Guest content of the bzip2 image (what qemu-img cannot read here). */
const BZ_CONTENT = (() => {
  const c = new Uint8Array(40 * 512);
  c.set(DATA.subarray(0, 4096));
  c.set(new Uint8Array(8192).fill(0x61), 4096);
  c.set(DATA.subarray(4096, 12288), 12288);
  return c;
})();

/** Images vdisk and qemu-img both read, by file name. */
const READABLE: Record<string, () => Uint8Array> = {
  'mixed.dmg': () =>
    makeDmg({
      blocks: [
        {
          firstSector: 0,
          chunks: [
            { type: DMG.zlib, sectors: 16, data: DATA.subarray(0, 8192) },
            { type: DMG.raw, sectors: 8, data: DATA.subarray(8192, 12288) },
            { type: DMG.zero, sectors: 8 },
            { type: DMG.ignore, sectors: 4 },
            { type: DMG.comment, sectors: 0 },
            { type: DMG.zlib, sectors: 12, data: DATA.subarray(12288, 18432) },
          ],
        },
        { firstSector: 48, chunks: [{ type: DMG.zlib, sectors: 2048, data: new Uint8Array(1024 * 1024).fill(7) }] },
      ],
    }),
  'rsrc.dmg': () =>
    makeDmg({
      container: 'rsrc',
      blocks: [
        { firstSector: 0, chunks: [{ type: DMG.zlib, sectors: 16, data: DATA.subarray(0, 8192) }, { type: DMG.raw, sectors: 8, data: DATA.subarray(8192, 12288) }] },
        { firstSector: 24, chunks: [{ type: DMG.zero, sectors: 100 }] },
      ],
    }),
  // a huge zero chunk: exempt from the sector limit
  'zero-tail.dmg': () =>
    makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.raw, sectors: 8, stored: DATA.subarray(0, 4096) }, { type: DMG.zero, sectors: 300000 }] }] }),
  'c4k.cloop': () => makeCloop(4096, DATA.subarray(0, 40000)),
  'c64k.cloop': () => makeCloop(65536, DATA.subarray(0, 200000)),
  'v1.bochs': () => makeBochs({ version: 1, diskSize: 1 << 20, extentSize: 4096, data: withData(1 << 20, [[40000, 3000]]) }),
  'v2.bochs': () => makeBochs({ version: 2, diskSize: 1 << 20, extentSize: 32768, data: withData(1 << 20, [[40000, 3000], [900000, 700]]) }),
  'odd.bochs': () => makeBochs({ version: 2, diskSize: (1 << 20) + 1000, extentSize: 8192, data: withData((1 << 20) + 512, [[1 << 20, 512]]) }),
};

function withData(size: number, runs: readonly [number, number][]): Uint8Array {
  const out = new Uint8Array(size);
  runs.forEach(([at, n], i) => out.set(DATA.subarray(i * 1000, i * 1000 + n), at));
  return out;
}

const SAMPLE_NAMES = ['empty.bochs', 'simple-dmg.dmg', 'simple-pattern.cloop'];

before(() => {
  for (const name of SAMPLE_NAMES) {
    const r = spawnSync('bzip2', ['-dc', join(SAMPLES, `${name}.bz2`)], { maxBuffer: 16 * 1024 * 1024 });
    assert.equal(r.status, 0, String(r.stderr));
    writeFileSync(join(dir.path, name), r.stdout);
  }
  for (const [name, make] of Object.entries(READABLE)) writeFileSync(join(dir.path, name), make());
  writeFileSync(
    join(dir.path, 'bz.dmg'),
    makeDmg({
      blocks: [
        {
          firstSector: 0,
          chunks: [
            { type: DMG.zlib, sectors: 8, data: BZ_CONTENT.subarray(0, 4096) },
            { type: DMG.bzip2, sectors: 16, data: BZ_CONTENT.subarray(4096, 12288) },
            { type: DMG.bzip2, sectors: 16, data: BZ_CONTENT.subarray(12288, 20480) },
          ],
        },
      ],
    }),
  );
});

/** qemu-img's stderr as vdisk words it, without Debian's missing-module lines. */
function qemuErr(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !l.includes('module block-block-dmg') && !l.includes('dmg-bzip2 module is missing') && !l.includes('dmg-lzfse module is missing'))
    .join('\n')
    .replaceAll('qemu-img:', 'vdisk:');
}

/** Runs the same command with both tools and asserts equal exit status, stdout and stderr. */
function same(args: readonly string[]): void {
  const ours = vdisk(args, { cwd: dir.path });
  const theirs = qemuImg(args, { cwd: dir.path });
  assert.equal(ours.status, theirs.status, `${args.join(' ')}: exit status (vdisk stderr: ${ours.stderr})`);
  assert.equal(ours.stdout, theirs.stdout, `${args.join(' ')}: stdout`);
  assert.equal(ours.stderr, qemuErr(theirs.stderr), `${args.join(' ')}: stderr`);
}

const ALL = [...SAMPLE_NAMES, ...Object.keys(READABLE)];
const fmt = (name: string): string => name.slice(name.lastIndexOf('.') + 1);

describe('ro: images read as qemu-img reads them', () => {
  for (const name of ALL) {
    it(`${name}: info, map, convert to raw, compare`, (t) => {
      if (!requireQemu(t)) return;
      for (const probe of [[], ['-f', fmt(name)]]) {
        same(['info', ...probe, name]);
        same(['info', '--output=json', ...probe, name]);
        same(['map', '--output=json', ...probe, name]);
      }
      same(['map', name]);
      same(['info', '--backing-chain', '--output=json', name]);
      same(['snapshot', '-l', name]);
      same(['check', name]);
      same(['measure', '-O', 'qcow2', name]);
      same(['convert', '-O', 'raw', name, `${name}.q.raw`]);
      assert.equal(vdisk(['convert', '-O', 'raw', name, `${name}.v.raw`], { cwd: dir.path }).status, 0);
      assert.deepEqual(readFileSync(join(dir.path, `${name}.v.raw`)), readFileSync(join(dir.path, `${name}.q.raw`)));
      same(['compare', name, `${name}.q.raw`]);
      same(['compare', '-f', fmt(name), '-F', 'raw', name, `${name}.q.raw`]);
      same(['dd', `if=${name}`, `of=${name}.dd`, 'bs=4k', 'count=2', 'skip=1']);
    });
  }

  it('convert to qcow2 and compare against the original', (t) => {
    if (!requireQemu(t)) return;
    for (const name of ['simple-dmg.dmg', 'mixed.dmg', 'simple-pattern.cloop', 'v2.bochs']) {
      assert.equal(vdisk(['convert', '-O', 'qcow2', name, `${name}.qcow2`], { cwd: dir.path }).status, 0);
      same(['compare', name, `${name}.qcow2`]);
    }
  });

  it('bzip2 chunks decode to the data the image was built from (Debian qemu-img lacks dmg-bz2)', () => {
    const r = vdisk(['convert', '-O', 'raw', 'bz.dmg', 'bz.raw'], { cwd: dir.path });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(new Uint8Array(readFileSync(join(dir.path, 'bz.raw'))), BZ_CONTENT);
  });
});

describe('ro: chunks that cannot be read fail as in qemu-img', () => {
  const CASES: Record<string, () => Uint8Array> = {
    // lzfse chunks that are no lzfse stream: vdisk's decoder fails them with EIO, as Debian's qemu-img (no dmg-lzfse) fails every lzfse chunk
    'lzfse.dmg': () =>
      makeDmg({
        blocks: [
          {
            firstSector: 0,
            chunks: [
              { type: DMG.zlib, sectors: 8, data: DATA.subarray(0, 4096) },
              { type: DMG.lzfse, sectors: 8, stored: DATA.subarray(0, 100) },
              { type: DMG.lzfse, sectors: 8, stored: DATA.subarray(0, 100) },
            ],
          },
        ],
      }),
    'adc.dmg': () => makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.adc, sectors: 8, stored: DATA.subarray(0, 100) }] }] }),
    // sectors 8..15 in no chunk; the error comes with the 2 MiB buffer that holds them
    'gap.dmg': () =>
      makeDmg({
        sectorCount: 8192 + 64,
        blocks: [
          { firstSector: 0, chunks: [{ type: DMG.zero, sectors: 8192 }] },
          { firstSector: 8192 + 16, chunks: [{ type: DMG.raw, sectors: 8, data: DATA.subarray(0, 4096) }] },
        ],
      }),
    // a zlib stream shorter than the chunk's sectors
    'short-zlib.dmg': () => makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.zlib, sectors: 16, data: DATA.subarray(0, 4096) }] }] }),
    'bad-zlib.cloop': () => {
      const img = makeCloop(4096, DATA.subarray(0, 8192));
      img.fill(0x55, img.length - 20);
      return img;
    },
  };
  before(() => {
    for (const [name, make] of Object.entries(CASES)) writeFileSync(join(dir.path, name), make());
  });
  for (const name of Object.keys(CASES)) {
    it(`${name}: info opens, convert fails with the same message`, (t) => {
      if (!requireQemu(t)) return;
      same(['info', '--output=json', name]);
      same(['convert', '-O', 'raw', name, `${name}.raw`]);
      same(['compare', name, name]);
    });
  }
});

describe('ro: writing is refused as qemu-img refuses it', () => {
  for (const name of SAMPLE_NAMES) {
    const f = fmt(name);
    it(`${f}: create, convert -O, and every read/write open`, (t) => {
      if (!requireQemu(t)) return;
      same(['create', '-f', f, 'new.img', '1M']);
      same(['create', '-f', f, '-o', 'help']);
      same(['convert', '-O', f, name, 'out.img']);
      same(['measure', '-O', f, name]);
      same(['resize', name, '+1M']);
      same(['commit', name]);
      same(['commit', '-d', name]);
      same(['amend', '-o', 'size=1M', name]);
      same(['snapshot', '-c', 's1', name]);
      same(['snapshot', '-d', 's1', name]);
      same(['rebase', '-u', '-b', '', name]);
      same(['check', '-r', 'all', name]);
      same(['bitmap', '--add', name, 'b0']);
    });
  }
});

/** Patches `name` (a sample) at `offset` with big- or little-endian words, as iotests 075 and 078 do. */
function patched(name: string, out: string, edits: readonly [number, number | bigint, 'be32' | 'le32' | 'be64' | 'le64'][]): void {
  const buf = new Uint8Array(readFileSync(join(dir.path, name)));
  const v = new DataView(buf.buffer);
  for (const [at, val, kind] of edits) {
    if (kind === 'be32') v.setUint32(at, Number(val), false);
    else if (kind === 'le32') v.setUint32(at, Number(val), true);
    else v.setBigUint64(at, BigInt(val), kind === 'le64');
  }
  writeFileSync(join(dir.path, out), buf);
}

describe('ro: hostile headers are refused with qemu-img messages (iotests 075, 078)', () => {
  const cloop: [string, [number, number | bigint, 'be32' | 'be64'][]][] = [
    ['block_size 513', [[128, 513, 'be32']]],
    ['block_size 0', [[128, 0, 'be32']]],
    ['huge block_size', [[128, 4294966784, 'be32']]],
    ['n_blocks overflow', [[132, 4294967295, 'be32']]],
    ['n_blocks wraps the table size', [[132, 536870911, 'be32']]],
    ['too many offsets', [[132, 536870910, 'be32']]],
    ['offsets not monotonic', [[140, 0, 'be64']]],
    ['huge compressed block', [[140, 2n ** 40n, 'be64']]],
    ['table past the end of the file', [[132, 1000, 'be32']]],
  ];
  for (const [label, edits] of cloop) {
    it(`cloop: ${label}`, (t) => {
      if (!requireQemu(t)) return;
      patched('simple-pattern.cloop', 'bad.cloop', edits);
      same(['info', '--output=json', 'bad.cloop']);
      same(['convert', '-O', 'raw', 'bad.cloop', 'bad.raw']);
    });
  }
  const bochs: [string, [number, number | bigint, 'le32' | 'le64'][]][] = [
    ['negative catalog size', [[72, 0xffff0000, 'le32']]],
    ['catalog * 4 overflow', [[72, 0x40000000, 'le32']]],
    ['catalog too small', [[72, 1, 'le32']]],
    ['disk too large for the catalog', [[88, 2n ** 40n, 'le64']]],
    ['negative extent size', [[80, 0x80000000, 'le32']]],
    ['zero extent size', [[80, 0, 'le32']]],
    ['extent not a power of two', [[80, 4097, 'le32']]],
    ['not bochs', [[32, 0x41414141, 'le32']]],
    ['zero bitmap size', [[76, 0, 'le32']]],
  ];
  for (const [label, edits] of bochs) {
    it(`bochs: ${label}`, (t) => {
      if (!requireQemu(t)) return;
      patched('empty.bochs', 'bad.bochs', edits);
      same(['info', '--output=json', 'bad.bochs']);
      same(['info', '-f', 'bochs', '--output=json', 'bad.bochs']);
    });
  }
  it('dmg: trailer and chunk limits', (t) => {
    if (!requireQemu(t)) return;
    const k = readFileSync(join(dir.path, 'simple-dmg.dmg')).lastIndexOf('koly');
    const cases: [number, bigint][] = [
      [k + 0x18, 2n ** 40n], // data fork past the trailer
      [k + 0xd8, 2n ** 40n], // XML past the trailer
      [k + 0xe0, 2n ** 40n], // XML longer than the file
      [k + 0xe0, 0n], // no XML and no resource fork
      [k + 0x1ec, 2n ** 63n], // negative sector count
    ];
    for (const [at, val] of cases) {
      patched('simple-dmg.dmg', 'bad.dmg', [[at, val, 'be64']]);
      same(['info', '--output=json', 'bad.dmg']);
    }
    writeFileSync(join(dir.path, 'tiny.dmg'), new Uint8Array(300));
    same(['info', '--output=json', 'tiny.dmg']);
    writeFileSync(join(dir.path, 'nokoly.dmg'), new Uint8Array(5000));
    same(['info', '--output=json', 'nokoly.dmg']);
    writeFileSync(join(dir.path, 'sectors.dmg'), makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.raw, sectors: 131073, stored: DATA.subarray(0, 512) }] }] }));
    same(['info', '--output=json', 'sectors.dmg']);
    // the chunk numbers in the message skip the chunk of unknown type, as qemu's do
    writeFileSync(join(dir.path, 'length.dmg'), makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.zero, sectors: 8 }, { type: DMG.adc, sectors: 8 }, { type: DMG.zero, sectors: 8, length: 64 * 1024 * 1024 + 1 }] }] }));
    same(['info', '--output=json', 'length.dmg']);
  });
});
