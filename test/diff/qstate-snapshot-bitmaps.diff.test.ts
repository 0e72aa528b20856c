/**
 * Internal snapshots of images with persistent bitmaps, against qemu-img
 * 7.2. Applying a snapshot rewrites guest data without
 * the bitmaps seeing it, so qemu refuses `snapshot -a` whenever a bitmap
 * is loaded — enabled, disabled or inconsistent — before even looking for
 * the snapshot; bitmaps a program without bitmap support left stale are
 * not loaded, and then the snapshot applies. Creating and deleting
 * snapshots leaves bitmaps alone. vdisk must answer alike and leave the
 * same image: header, bitmap flags and bits, info and check.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSameCheck, assertSameImage, bitmapContents, clearHeaderBits, EXT_BITMAPS, extensions, head, pairOf, poke, runBoth } from '../helpers/qstate.js';

const dir = tmpDir('vdisk-qstate-snap-');
after(() => dir.cleanup());
const cwd = dir.path;

/** A 1 MiB image with snapshot `s1`, newer data, then bitmap `b0` made `kind` and one more write it records. */
function image(kind: 'enabled' | 'disabled' | 'in-use' | 'stale' | 'none'): string {
  const path = join(cwd, `${kind}.qcow2`);
  qemuImgOk(['create', '-q', '-f', 'qcow2', path, '1M']);
  qemuIo(path, ['write -P 1 0 64k']);
  qemuImgOk(['snapshot', '-c', 's1', path]);
  qemuIo(path, ['write -P 2 0 128k']);
  if (kind === 'none') return path;
  qemuImgOk(['bitmap', '--add', path, 'b0']);
  qemuIo(path, ['write -P 3 512k 64k']);
  if (kind === 'disabled') qemuImgOk(['bitmap', '--disable', path, 'b0']);
  if (kind === 'in-use') {
    const ext = extensions(path).get(EXT_BITMAPS);
    assert.ok(ext);
    const dirOffset = Number(head(path).readBigUInt64BE(ext.offset + 16));
    poke(path, dirOffset + 15, Uint8Array.of(head(path, dirOffset + 16)[dirOffset + 15]! | 1));
  }
  if (kind === 'stale') clearHeaderBits(path, 88, 1n);
  return path;
}

describe('qcow2 snapshots with persistent bitmaps, against qemu-img', () => {
  for (const kind of ['enabled', 'disabled', 'in-use'] as const) {
    it(`snapshot -a is refused with a ${kind} bitmap, and the image and its bits stay as qemu leaves them`, (t) => {
      if (!requireQemu(t)) return;
      const base = image(kind);
      const before = bitmapContents(base);
      assert.equal(before.length, 1);
      for (const args of [['snapshot', '-a', 's1'], ['snapshot', '-a', '1'], ['snapshot', '-a', 'nope']]) {
        const pair = pairOf(cwd, base);
        const r = runBoth(pair, [...args, pair.name]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /^vdisk: Could not apply snapshot '[^']+': Device has active dirty bitmaps\n$/);
        assertSameImage(pair, `${kind}: ${args.join(' ')}`);
        assert.deepEqual(bitmapContents(join(pair.v, pair.name)).map((b) => b.bits), before.map((b) => b.bits), 'bits unchanged');
      }
    });
  }

  it('bitmaps left stale by a program without bitmap support do not block snapshot -a', (t) => {
    if (!requireQemu(t)) return;
    const base = image('stale');
    for (const args of [['snapshot', '-a', 's1'], ['snapshot', '-a', 'nope']]) {
      const pair = pairOf(cwd, base);
      runBoth(pair, [...args, pair.name]);
      assertSameImage(pair, `stale: ${args.join(' ')}`);
    }
  });

  it('snapshot opens the backing chain as qemu-img does: a missing backing file fails every action', (t) => {
    if (!requireQemu(t)) return;
    const top = join(cwd, 'orphan.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', join(cwd, 'gone.qcow2'), '1M']);
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'gone.qcow2', '-F', 'qcow2', top]);
    qemuImgOk(['snapshot', '-c', 's1', top]);
    rmSync(join(cwd, 'gone.qcow2'));
    for (const args of [['-l'], ['-c', 's2'], ['-a', 's1'], ['-d', 's1']]) {
      const pair = pairOf(cwd, top);
      const q = qemuImg(['snapshot', ...args, pair.name], { cwd: pair.q });
      const v = vdisk(['snapshot', ...args, pair.name], { cwd: pair.v });
      assert.equal(q.status, 1, `qemu-img snapshot ${args.join(' ')}`);
      assert.equal(v.status, 1, `vdisk snapshot ${args.join(' ')}: ${v.stderr}`);
      assert.match(v.stderr, /gone\.qcow2/);
      assert.deepEqual(head(join(pair.v, pair.name)), head(join(pair.q, pair.name)));
    }
  });

  for (const kind of ['enabled', 'disabled'] as const) {
    it(`snapshot -c and -d leave ${kind} bitmaps and their bits alone, as qemu does`, (t) => {
      if (!requireQemu(t)) return;
      const base = image(kind);
      const bits = bitmapContents(base).map((b) => b.bits);
      const deleted = pairOf(cwd, base);
      runBoth(deleted, ['snapshot', '-d', 's1', deleted.name]);
      assertSameImage(deleted, `${kind}: snapshot -d`);
      assert.deepEqual(bitmapContents(join(deleted.v, deleted.name)).map((b) => b.bits), bits);
      // A new snapshot records the time, so only the bitmaps and check are compared.
      const created = pairOf(cwd, base);
      runBoth(created, ['snapshot', '-c', 's2', created.name]);
      const q = join(created.q, created.name);
      const v = join(created.v, created.name);
      assert.deepEqual(bitmapContents(v), bitmapContents(q));
      assert.deepEqual(bitmapContents(v).map((b) => b.bits), bits);
      assertSameCheck(v, q, `${kind}: snapshot -c`);
    });
  }
});
