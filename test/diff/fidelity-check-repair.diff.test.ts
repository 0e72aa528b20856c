/**
 * `check -r all` on a consistent image with an internal snapshot and a
 * persistent bitmap: qemu-img 7.2 "repairs" leaks and corruptions it
 * invents and drops the snapshot (a deliberate difference); vdisk finds
 * nothing, changes nothing, and qemu-img's read-only check agrees.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-fidelity-check-repair-');
after(() => dir.cleanup());

describe('check -r all keeps snapshots of an image with bitmaps', () => {
  it('finds no errors, keeps the snapshot and its content', (t) => {
    if (!requireQemu(t)) return;
    const img = join(dir.path, 't.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', img, '4M']);
    qemuIo(img, ['write -P 0xc1 1M 64k', 'write -P 0xc2 3000000 5000'], 'qcow2');
    copyFileSync(img, join(dir.path, 'orig.qcow2'));
    qemuImgOk(['snapshot', '-c', 't1', img]);
    qemuImgOk(['bitmap', '--add', '--disable', img, 'b2']);
    const r = vdisk(['check', '-r', 'all', img]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^No errors were found on the image\./);
    assert.equal(qemuImg(['check', img]).status, 0);
    assert.match(qemuImgOk(['snapshot', '-l', img]), /\bt1\b/);
    qemuIo(img, ['write -P 0xee 1M 64k'], 'qcow2');
    qemuImgOk(['convert', '-l', 'snapshot.name=t1', '-O', 'raw', img, join(dir.path, 'snap.raw')]);
    qemuImgOk(['compare', '-F', 'qcow2', join(dir.path, 'snap.raw'), join(dir.path, 'orig.qcow2')]);
  });
});
