/** Image locks interoperate with qemu: each side sees the other's OFD locks. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/**
 * Waits until qemu-img sees `image` locked by `holder` (qemu-io takes the
 * lock some time after it starts, later under load) and returns that
 * refusal. Fails if the holder exits first, or has not locked the image
 * after a minute (a hang guard, not a timing assertion).
 */
async function lockedFor(holder: ChildProcess, image: string): Promise<SpawnSyncReturns<string>> {
  const giveUp = Date.now() + 60_000;
  for (;;) {
    const r = qemuImg(['info', image], { cwd });
    if (r.status !== 0 && /Failed to get shared "write" lock/.test(r.stderr)) return r;
    const running = holder.exitCode === null && holder.signalCode === null;
    assert.ok(running, `qemu-io exited (${String(holder.exitCode ?? holder.signalCode)}) before qemu-img saw its lock: ${r.stderr}`);
    assert.ok(Date.now() < giveUp, `qemu-io has not locked ${image} after a minute: ${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('image locking', { skip: native ? false : 'native module not built (locks are a no-op)' }, () => {
  it('refuses an image a qemu-io writer holds, unless -U', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'held.qcow2', '1M'], { cwd });
    // The holder sleeps far longer than the test needs and is killed at the end.
    const holder = spawn('qemu-io', ['-c', 'sleep 600000', 'held.qcow2'], { cwd, stdio: 'ignore' });
    const exited = new Promise((r) => holder.once('exit', r));
    try {
      const theirs = await lockedFor(holder, 'held.qcow2');
      const ours = vdisk(['info', 'held.qcow2'], { cwd });
      assert.equal(ours.status, 1);
      assert.equal(ours.stderr, asVdisk(theirs.stderr));
      assert.equal(vdisk(['info', '-U', 'held.qcow2'], { cwd }).status, 0);
      assert.equal(vdisk(['convert', '-O', 'raw', 'held.qcow2', 'copy.raw'], { cwd }).status, 1);
      assert.equal(vdisk(['convert', '-U', '-O', 'raw', 'held.qcow2', 'copy.raw'], { cwd }).status, 0);
    } finally {
      holder.kill();
      await exited;
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
