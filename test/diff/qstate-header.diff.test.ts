/**
 * qcow2 header state, against qemu-img 7.2:
 * autoclear bits qemu does not know are cleared by every read/write open
 * (checks with repair included) and kept by read-only ones; a bitmaps
 * extension whose autoclear bit is clear (a program without bitmap support
 * wrote the image) is ignored with qemu's warning on every open and dropped
 * by read/write ones; unsupported incompatible features are named from the
 * image's feature-name table; and a header vdisk rewrites carries qemu's own
 * feature table, none at 4 KiB clusters or less.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSameImage, clearHeaderBits, EXT_BITMAPS, EXT_FEATURE_TABLE, extensions, head, pairOf, poke, runBoth, setHeaderBits } from '../helpers/qstate.js';

const dir = tmpDir('vdisk-qstate-header-');
after(() => dir.cleanup());
const cwd = dir.path;

function create(name: string, options = 'compat=1.1', size = '1M'): string {
  const path = join(cwd, name);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', options, path, size]);
  return path;
}

/** `cmd` with `@` replaced by the image name, or the name appended. */
const withImage = (cmd: readonly string[], name: string): string[] => (cmd.includes('@') ? cmd.map((a) => (a === '@' ? name : a)) : [...cmd, name]);

const READERS: readonly (readonly string[])[] = [['info'], ['check'], ['map', '--output=json'], ['snapshot', '-l'], ['measure', '-O', 'qcow2'], ['compare', '@', '@'], ['convert', '-O', 'raw', '@', 'out.raw']];
const WRITERS: readonly (readonly string[])[] = [
  ['check', '-r', 'leaks'],
  ['check', '-r', 'all'],
  ['resize', '@', '2M'],
  ['amend', '-o', 'lazy_refcounts=on'],
  ['bitmap', '--add', '@', 'b9'],
  ['rebase', '-u', '-b', ''],
];

describe('qcow2 autoclear bits and stale bitmaps, against qemu-img', () => {
  it('unknown autoclear bits: kept by read-only opens, cleared by every read/write one', (t) => {
    if (!requireQemu(t)) return;
    const base = create('autoclear.qcow2');
    qemuIo(base, ['write 0 64k']);
    setHeaderBits(base, 88, (1n << 7n) | (1n << 40n));
    for (const cmd of [...READERS, ...WRITERS]) {
      const pair = pairOf(cwd, base);
      runBoth(pair, withImage(cmd, pair.name));
      assertSameImage(pair, cmd.join(' '));
    }
  });

  for (const version of ['1.1', '0.10'] as const) {
    it(`compat=${version}: stale bitmaps warn on every open and are dropped by read/write opens`, (t) => {
      if (!requireQemu(t)) return;
      const base = create(`stale-${version}.qcow2`);
      qemuImgOk(['bitmap', '--add', base, 'b0']);
      qemuIo(base, ['write 0 64k']);
      // compat=0.10 keeps the extension and has no autoclear bits: the same state, the v2 way.
      if (version === '0.10') qemuImgOk(['amend', '-o', 'compat=0.10', base]);
      else clearHeaderBits(base, 88, 1n);
      assert.ok(extensions(base).has(EXT_BITMAPS));
      // (v2 refuses bitmap --add, naming the node where vdisk names the file: not this test's business.)
      for (const cmd of [...READERS, ...WRITERS.filter((c) => version === '1.1' || c[0] !== 'bitmap')]) {
        const pair = pairOf(cwd, base);
        const r = runBoth(pair, withImage(cmd, pair.name));
        assert.match(r.stderr, /^vdisk: warning: .*considered inconsistent\nSome clusters may be leaked, run 'vdisk check -r' on the image file to fix\./);
        assertSameImage(pair, cmd.join(' '));
      }
    });
  }

  it('an overlay over an image with stale bitmaps warns for the backing file too', (t) => {
    if (!requireQemu(t)) return;
    const base = create('stale-backing.qcow2');
    qemuImgOk(['bitmap', '--add', base, 'b0']);
    clearHeaderBits(base, 88, 1n);
    const pair = pairOf(cwd, base, 'base.qcow2');
    for (const d of [pair.q, pair.v]) qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(d, 'top.qcow2')]);
    runBoth(pair, ['info', '--backing-chain', 'top.qcow2']);
    runBoth(pair, ['convert', '-O', 'raw', 'top.qcow2', 'out.raw']);
    runBoth(pair, ['create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'new.qcow2']);
  });
});

/** Replaces the image's feature-name table with `entries` (type, bit, name); `length` cuts the extension short. */
function withFeatureTable(path: string, entries: readonly [number, number, string][], length?: number): void {
  const ext = extensions(path).get(EXT_FEATURE_TABLE);
  assert.ok(ext);
  const table = Buffer.alloc(Math.ceil(ext.length / 8) * 8);
  entries.forEach(([type, bit, name], i) => {
    table[i * 48] = type;
    table[i * 48 + 1] = bit;
    table.write(name.slice(0, 46), i * 48 + 2);
  });
  const len = Buffer.alloc(4);
  len.writeUInt32BE(length ?? entries.length * 48);
  poke(path, ext.offset - 4, len);
  poke(path, ext.offset, table);
}

describe('qcow2 feature-name tables, against qemu-img', () => {
  // Each: the incompatible bits set, the table, an optional cut of the extension's length.
  const cases: readonly [string, bigint, [number, number, string][], number?][] = [
    ['no names', (1n << 10n) | (1n << 5n), []],
    ['table order, then the rest as one mask', (1n << 10n) | (1n << 5n) | (1n << 40n), [[0, 0, 'dirty bit'], [0, 40, 'forty'], [0, 10, 'ten'], [1, 5, 'compat five']]],
    ['a nameless entry ends the table', (1n << 10n) | (1n << 5n), [[0, 0, 'dirty bit'], [0, 0, ''], [0, 10, 'ten']]],
    ['bit numbers past 63 and names of 46 bytes', (1n << 10n) | (1n << 5n), [[0, 74, 'seventy-four'], [0, 5, 'x'.repeat(46)]]],
    ['a partial last entry', (1n << 10n) | (1n << 5n), [[0, 0, 'dirty bit'], [0, 10, 'tenlong']], 48 + 12],
    ['a bit named twice', 1n << 10n, [[0, 10, 'ten'], [0, 10, 'ten again']]],
  ];
  for (const [what, bits, entries, length] of cases) {
    it(`unsupported features: ${what}`, (t) => {
      if (!requireQemu(t)) return;
      const path = create('features.qcow2');
      withFeatureTable(path, entries, length);
      setHeaderBits(path, 72, bits);
      const pair = pairOf(cwd, path);
      const r = runBoth(pair, ['info', pair.name]);
      assert.match(r.stderr, /Unsupported qcow2 feature\(s\): /);
      runBoth(pair, ['check', pair.name]);
    });
  }

  it("a rewritten header carries qemu's own feature table, not the image's", (t) => {
    if (!requireQemu(t)) return;
    const path = create('short-table.qcow2');
    withFeatureTable(path, [[0, 0, 'dirty bit'], [0, 1, 'corrupt bit'], [1, 0, 'lazy refcounts']]);
    for (const cmd of [['amend', '-o', 'lazy_refcounts=on'], ['bitmap', '--add', '@', 'b'], ['rebase', '-u', '-b', ''], ['check', '-r', 'all']]) {
      const pair = pairOf(cwd, path);
      runBoth(pair, withImage(cmd, pair.name));
      assertSameImage(pair, cmd.join(' '));
    }
  });

  for (const length of [104, 128]) {
    it(`a header ${length} bytes long is rewritten ${length < 112 ? 'at 112 bytes' : 'with its unknown fields'}, as qemu does`, (t) => {
      if (!requireQemu(t)) return;
      const path = create(`length${length}.qcow2`);
      // Move the extensions to the new header end; past 112 the gap holds fields qemu does not know.
      const h = head(path, 65536);
      const moved = Buffer.alloc(65536 - length);
      h.copy(moved, 0, 112, 112 + moved.length);
      const fields = Buffer.alloc(Math.max(0, length - 112), 0xab);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(length);
      poke(path, 100, len);
      poke(path, 112, fields);
      poke(path, length, moved);
      for (const cmd of [['amend', '-o', 'lazy_refcounts=on'], ['rebase', '-u', '-b', '']]) {
        const pair = pairOf(cwd, path);
        runBoth(pair, withImage(cmd, pair.name));
        assertSameImage(pair, `${length}: ${cmd.join(' ')}`);
      }
    });
  }

  for (const cs of [512, 4096, 8192]) {
    it(`cluster_size=${cs}: create and header rewrites write the feature table as qemu does`, (t) => {
      if (!requireQemu(t)) return;
      const pair = pairOf(cwd, create(`cs${cs}-backing.qcow2`), 'base.qcow2');
      runBoth(pair, ['create', '-f', 'qcow2', '-o', `cluster_size=${cs}`, '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2']);
      const top = { ...pair, name: 'top.qcow2' };
      assert.deepEqual(head(join(pair.v, 'top.qcow2'), cs), head(join(pair.q, 'top.qcow2'), cs));
      for (const cmd of [['amend', '-o', 'lazy_refcounts=on'], ['rebase', '-u', '-b', '']]) {
        runBoth(top, withImage(cmd, top.name));
        assertSameImage(top, `${cs}: ${cmd.join(' ')}`, cs);
      }
    });
  }
});
