/** Image locks interoperate with qemu: each side sees the other's OFD locks. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

describe('image locking', { skip: native ? false : 'native module not built (locks are a no-op)' }, () => {
  it('refuses an image a qemu-io writer holds, unless -U', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'held.qcow2', '1M'], { cwd });
    const holder = spawn('qemu-io', ['-c', 'sleep 5000', 'held.qcow2'], { cwd, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 700));
      const theirs = qemuImg(['info', 'held.qcow2'], { cwd });
      const ours = vdisk(['info', 'held.qcow2'], { cwd });
      assert.equal(ours.status, 1);
      assert.equal(ours.stderr, asVdisk(theirs.stderr));
      assert.equal(vdisk(['info', '-U', 'held.qcow2'], { cwd }).status, 0);
      assert.equal(vdisk(['convert', '-O', 'raw', 'held.qcow2', 'copy.raw'], { cwd }).status, 1);
      assert.equal(vdisk(['convert', '-U', '-O', 'raw', 'held.qcow2', 'copy.raw'], { cwd }).status, 0);
    } finally {
      holder.kill();
    }
  });

  it('qemu-img cannot open an image vdisk has open for writing', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'mine.qcow2', '1M'], { cwd });
    const dev = await BlockDevice.open(join(cwd, 'mine.qcow2'), { format: 'qcow2', readOnly: false });
    try {
      const r = qemuImg(['info', 'mine.qcow2'], { cwd });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /Failed to get shared "write" lock/);
      assert.equal(qemuImg(['info', '-U', 'mine.qcow2'], { cwd }).status, 0);
    } finally {
      await dev.close();
    }
    assert.equal(qemuImg(['info', 'mine.qcow2'], { cwd }).status, 0, 'locks are released on close');
  });

  it('refuses force-share on a writable open', async () => {
    await assert.rejects(BlockDevice.open(join(cwd, 'mine.qcow2'), { readOnly: false, forceShare: true }), /force-share=on can only be used with read-only images/);
  });
});
