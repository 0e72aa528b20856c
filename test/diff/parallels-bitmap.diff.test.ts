/**
 * The format extension's dirty bitmap, as QEMU reads it (read-only):
 * `bitmap --merge` from a parallels image into a qcow2 bitmap gives the
 * bits qemu-img gives (read back through qemu-nbd, as iotest
 * parallels-read-bitmap does), and the refusals match. Also: a rebase
 * without a backing format is refused for that before the format's
 * missing support (parallels, vdi), as qemu-img does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';
import { dirtyRanges } from '../sweep/nbd-bitmap.js';
import { both, hasBzip2, SAMPLE_BITMAP, sample } from './parallels-kit.js';

const dir = tmpDir('vdisk-parallels-bitmap-');
after(() => dir.cleanup());
const hasNbd = spawnSync('qemu-nbd', ['--version']).status === 0;

describe('parallels format-extension bitmaps', { skip: hasBzip2 ? false : 'needs bzip2' }, () => {
  it('bitmap --merge from the sample gives qemu-img\'s bits (clusters 5-6, 10-12, 30 of 64 KiB)', { skip: hasNbd ? false : 'needs qemu-nbd' }, async (t) => {
    if (!requireQemu(t)) return;
    const d = join(dir.path, 'merge');
    mkdirSync(d);
    sample('parallels-with-bitmap', d, 'pb.hds');
    for (const tool of ['q', 'v']) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', join(d, `${tool}.qcow2`), '64G']);
      qemuImgOk(['bitmap', '--add', join(d, `${tool}.qcow2`), 'x']);
    }
    const args = (tool: string): string[] => ['bitmap', '--merge', SAMPLE_BITMAP, '-b', 'pb.hds', '-F', 'parallels', `${tool}.qcow2`, 'x'];
    qemuImgOk(args('q'), { cwd: d });
    const r = vdisk(args('v'), { cwd: d });
    assert.equal(r.status, 0, r.stderr);
    const theirs = await dirtyRanges(d, 'q.qcow2', 'qcow2', 'x');
    assert.equal(theirs, ['327680+131072', '655360+196608', '1966080+65536'].join('\n'));
    assert.equal(await dirtyRanges(d, 'v.qcow2', 'qcow2', 'x'), theirs);
  });

  for (const args of [
    ['bitmap', '--merge', 'no-such', '-b', 'pb.hds', '-F', 'parallels', 't.qcow2', 'x'],
    ['convert', '--bitmaps', '-O', 'qcow2', 'pb.hds', 'out.qcow2'],
  ]) {
    it(`${args.join(' ')}: refused as qemu-img refuses it`, (t) => {
      if (!requireQemu(t)) return;
      const d = join(dir.path, `r-${args[0]}`);
      mkdirSync(d);
      sample('parallels-with-bitmap', d, 'pb.hds');
      qemuImgOk(['create', '-q', '-f', 'qcow2', join(d, 't.qcow2'), '64G']);
      qemuImgOk(['bitmap', '--add', join(d, 't.qcow2'), 'x']);
      const r = both(d, args);
      assert.equal(r.vdisk.status, 1);
      assert.deepEqual(r.vdisk, r.qemu);
    });
  }
});

describe('rebase without a backing format', () => {
  for (const fmt of ['parallels', 'vdi']) {
    it(`${fmt}: "backing format must be specified", as qemu-img`, (t) => {
      if (!requireQemu(t)) return;
      const d = join(dir.path, `rebase-${fmt}`);
      mkdirSync(d);
      qemuImgOk(['create', '-q', '-f', fmt, join(d, 'img'), '4M']);
      qemuImgOk(['create', '-q', '-f', 'raw', join(d, 'b.raw'), '4M']);
      for (const args of [['rebase', '-b', 'b.raw', 'img'], ['rebase', '-u', '-b', 'b.raw', 'img']]) {
        const r = both(d, args);
        assert.equal(r.vdisk.stderr, "vdisk: Could not change the backing file to 'b.raw': backing format must be specified\n");
        assert.deepEqual(r.vdisk, r.qemu);
      }
    });
  }
});
