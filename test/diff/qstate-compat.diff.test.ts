/**
 * `amend -o compat=` both ways, against qemu-img 7.2.
 * Upgrading to 1.1 rewrites a snapshot table whose entries lack the v3
 * extra data (disk size, 64-bit VM state size) before the header changes;
 * downgrading to 0.10 refuses what v2 cannot hold with qemu's messages,
 * turns zero clusters into data, repairs a dirty image first, and keeps a
 * bitmaps extension, which v2 readers then ignore as stale.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { damageQcow2 } from '../helpers/qcow2-damage.js';
import { assertSameImage, EXT_BITMAPS, extensions, head, pairOf, runBoth, setHeaderBits, snapshotTable, stripSnapshotExtra } from '../helpers/qstate.js';

const dir = tmpDir('vdisk-qstate-compat-');
after(() => dir.cleanup());
const cwd = dir.path;

let images = 0;

/** A new image made with `options`, then `setup` run on its path. */
function image(options: string, setup: (path: string) => void = () => undefined): string {
  const path = join(cwd, `base${++images}.qcow2`);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', options, path, '1M']);
  setup(path);
  return path;
}

/** Runs `amend -o <options>` with both tools on copies of `base`; asserts the same output and the same image. */
function amendBoth(base: string, options: string): { status: number; stderr: string; q: string; v: string } {
  const pair = pairOf(cwd, base);
  const r = runBoth(pair, ['amend', '-o', options, pair.name]);
  assertSameImage(pair, `amend -o ${options}`);
  runBoth(pair, ['snapshot', '-l', pair.name]);
  return { ...r, q: join(pair.q, pair.name), v: join(pair.v, pair.name) };
}

describe('qcow2 compat upgrade, against qemu-img', () => {
  const v2WithSnapshots = (keep: number) =>
    image('compat=0.10', (p) => {
      qemuIo(p, ['write -P 1 0 64k']);
      qemuImgOk(['snapshot', '-c', 's1', p]);
      qemuIo(p, ['write -P 2 0 64k']);
      qemuImgOk(['snapshot', '-c', 'second', p]);
      stripSnapshotExtra(p, keep);
    });

  for (const keep of [0, 8]) {
    it(`snapshot entries with ${keep} bytes of extra data get the v3 extra data`, (t) => {
      if (!requireQemu(t)) return;
      const base = v2WithSnapshots(keep);
      assert.ok(snapshotTable(base).every((e) => e.extra.length === keep * 2));
      for (const options of ['compat=1.1', 'compat=1.1,lazy_refcounts=on', 'compat=1.1,size=4M']) {
        const r = amendBoth(base, options);
        assert.equal(r.status, 0);
        const table = snapshotTable(r.v);
        assert.deepEqual(table, snapshotTable(r.q));
        assert.ok(table.every((e) => e.extra.length === 48), 'the 24 bytes of v3 extra data');
      }
    });
  }

  it('a v2 image with complete snapshot entries upgrades in place', (t) => {
    if (!requireQemu(t)) return;
    const r = amendBoth(v2WithSnapshots(24), 'compat=1.1');
    assert.equal(head(r.v, 8).readUInt32BE(4), 3);
  });
});

describe('qcow2 compat downgrade, against qemu-img', () => {
  const cases: readonly [string, string, (p: string) => void][] = [
    ['enabled bitmap (extension kept)', 'compat=1.1', (p) => (qemuImgOk(['bitmap', '--add', p, 'b0']), qemuIo(p, ['write 0 64k']))],
    ['disabled bitmap', 'compat=1.1', (p) => qemuImgOk(['bitmap', '--add', '--disable', p, 'b0'])],
    ['zstd, no compressed clusters', 'compression_type=zstd', (p) => qemuIo(p, ['write 0 64k'])],
    ['zstd with compressed clusters', 'compression_type=zstd', (p) => qemuIo(p, ['write -c 0 64k'])],
    ['zero clusters', 'compat=1.1', (p) => qemuIo(p, ['write 0 64k', 'write -z 128k 64k', 'write -z -u 0 64k'])],
    ['dirty lazy refcounts', 'lazy_refcounts=on', (p) => (qemuIo(p, ['write 0 128k']), damageQcow2(p, 'refcount-zero'), setHeaderBits(p, 72, 1n))],
    ['extended L2', 'extended_l2=on', () => undefined],
    ['snapshot of another size', 'compat=1.1', (p) => (qemuImgOk(['snapshot', '-c', 's', p]), qemuImgOk(['resize', '-q', p, '2M']))],
    ['snapshot', 'compat=1.1', (p) => qemuImgOk(['snapshot', '-c', 's', p])],
    ['unknown autoclear bit', 'compat=1.1', (p) => setHeaderBits(p, 88, 1n << 9n)],
  ];
  for (const [what, options, setup] of cases) {
    it(what, (t) => {
      if (!requireQemu(t)) return;
      const r = amendBoth(image(options, setup), 'compat=0.10');
      if (what.includes('kept')) assert.ok(extensions(r.v).has(EXT_BITMAPS));
    });
  }

  it('refcount widths: refused alone, converted with refcount_bits=16', (t) => {
    if (!requireQemu(t)) return;
    const base = image('refcount_bits=64');
    assert.equal(amendBoth(base, 'compat=0.10').status, 1);
    assert.equal(amendBoth(base, 'compat=0.10,refcount_bits=16').status, 0);
  });
});
