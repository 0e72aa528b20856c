/**
 * Dirty qcow2 images (lazy refcounts after a crash), against qemu-img 7.2.
 * A read/write open repairs a dirty image
 * first and qemu prints the repair's lines on stderr ("ERROR cluster ...",
 * "Rebuilding refcount structure", "Repairing cluster ..."); every command
 * that opens an image for writing must print them alike and leave the
 * same image. `check` and `check -r all` agree too. `check -r leaks`
 * cannot repair what lazy refcounts leave behind; qemu still clears the
 * dirty flag when it closes the image, so the next writer allocates over
 * live data. vdisk keeps the flag there (a deliberate difference, tested
 * here), so the next read/write open repairs the image first.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { damageQcow2 } from '../helpers/qcow2-damage.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSameImage, head, pairOf, runBoth, setHeaderBits } from '../helpers/qstate.js';

const dir = tmpDir('vdisk-qstate-dirty-');
after(() => dir.cleanup());
const cwd = dir.path;

/**
 * What a crash under lazy refcounts leaves: data written (two clusters),
 * the refcount of one never updated, the dirty bit set.
 */
function crashedLazyImage(name: string): string {
  const path = join(cwd, name);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path, '1M']);
  qemuIo(path, ['write -P 1 0 64k', 'write -P 2 64k 64k']);
  damageQcow2(path, 'refcount-zero');
  setHeaderBits(path, 72, 1n);
  return path;
}

const dirtyBit = (path: string): boolean => (head(path, 80).readBigUInt64BE(72) & 1n) !== 0n;

describe('dirty qcow2 images, against qemu-img', () => {
  const writers: readonly (readonly string[])[] = [
    ['snapshot', '-c', 's'],
    ['resize', '@', '2M'],
    ['amend', '-o', 'lazy_refcounts=off'],
    ['bitmap', '--add', '@', 'b0'],
    ['rebase', '-u', '-b', ''],
  ];
  for (const cmd of writers) {
    it(`${cmd.join(' ')} repairs the image on open and prints qemu's repair lines`, (t) => {
      if (!requireQemu(t)) return;
      const pair = pairOf(cwd, crashedLazyImage('w.qcow2'));
      const args = cmd.includes('@') ? cmd.map((a) => (a === '@' ? pair.name : a)) : [...cmd, pair.name];
      const r = runBoth(pair, args);
      assert.match(r.stderr, /^ERROR cluster \d+ refcount=0 reference=1\n/);
      assert.match(r.stderr, /\nRepairing cluster \d+ refcount=1 reference=0\n/);
      assert.equal(dirtyBit(join(pair.v, pair.name)), false);
      // A snapshot records its creation time: compare everything but the header and info then.
      if (cmd[0] === 'snapshot') assert.equal(qemuImg(['check', join(pair.v, pair.name)]).status, 0);
      else assertSameImage(pair, cmd.join(' '));
    });
  }

  it('check and check -r all agree on a dirty image', (t) => {
    if (!requireQemu(t)) return;
    const base = crashedLazyImage('c.qcow2');
    const pair = pairOf(cwd, base);
    runBoth(pair, ['check', pair.name]);
    runBoth(pair, ['check', '--output=json', pair.name]);
    assertSameImage(pair, 'check');
    runBoth(pair, ['check', '-r', 'all', pair.name]);
    assertSameImage(pair, 'check -r all');
    assert.equal(dirtyBit(join(pair.v, pair.name)), false);
  });

  it('check -r leaks: same output, but vdisk keeps the dirty flag so the next writer repairs (deliberate)', (t) => {
    if (!requireQemu(t)) return;
    const pair = pairOf(cwd, crashedLazyImage('l.qcow2'));
    runBoth(pair, ['check', '-r', 'leaks', pair.name]);
    const q = join(pair.q, pair.name);
    const v = join(pair.v, pair.name);
    assert.equal(dirtyBit(q), false, 'qemu clears the flag');
    assert.equal(dirtyBit(v), true, 'vdisk keeps it: the refcounts are still wrong');
    // Now a write through qemu: on qemu's image it reuses the cluster whose refcount is 0.
    for (const p of [q, v]) qemuIo(p, ['write -P 9 512k 128k']);
    const intact = (p: string): boolean => qemuIoOk(p, 'read -P 2 64k 64k');
    assert.equal(intact(v), true, 'vdisk: guest data survives the next write');
    assert.equal(intact(q), false, 'qemu-img: the next write overwrote guest data (why vdisk differs)');
    assert.equal(vdisk(['check', v]).status, 0);
  });
});

/** True when qemu-io's read pattern check passes. */
function qemuIoOk(path: string, command: string): boolean {
  const r = spawnSync('qemu-io', ['-c', command, path], { encoding: 'utf8' });
  return r.status === 0 && !/Pattern verification failed/.test(r.stdout);
}
