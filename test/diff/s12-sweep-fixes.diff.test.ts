/**
 * Differences the twelfth session's sweep (VDISK_FUZZ_SEED=2412) found, each
 * against qemu-img:
 * - an empty vhdx with 256 MiB blocks (or more) gets a 2 GiB BAT region from
 *   qemu's underflow; qemu-img refuses to create it ("Failed to write the
 *   BAT") and cannot open one, which vdisk made;
 * - a resize that leaves a persistent bitmap too large for the new size (1 PiB
 *   at 64 KiB granularity) stores no bitmap: the directory keeps its in_use
 *   flags and the close reports "Lost persistent bitmaps" (vdisk wrote a
 *   bitmap qemu then refused to open the image for);
 * - bits past a shrunk size that share the last byte with live ones were kept,
 *   and showed dirty after the image grew again.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { dirtyRanges } from '../sweep/nbd-bitmap.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s12-sweep-');
after(() => dir.cleanup());
const cwd = dir.path;

/** The sweep's q-bm.qcow2: two bitmaps (one disabled, 128k granules) and the standard pattern. */
function withBitmaps(file: string): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', file, '4M'], { cwd });
  qemuImgOk(['bitmap', '--add', file, 'bm-on'], { cwd });
  qemuImgOk(['bitmap', '--add', '--disable', '-g', '128k', file, 'bm-off'], { cwd });
  const r = qemuIo(join(cwd, file), ['write -P 0x11 0 64k', 'write -P 0x22 1000000 3000', 'write -P 0x33 2M 192k', 'write -P 0x55 4190208 4096'], 'qcow2');
  assert.equal(r.status, 0, r.stderr);
}

describe('the sweep of seed 2412, as qemu-img', () => {
  it('an empty vhdx whose BAT region qemu cannot write is refused as qemu-img refuses it', (t) => {
    if (!requireQemu(t)) return;
    const fresh = (): void => {
      qemuImgOk(['create', '-q', '-f', 'raw', 'empty.raw', '0'], { cwd });
    };
    assertCasesMatchQemu(
      [
        ['create', '-f', 'vhdx', '-o', 'block_size=256M', 'out.vhdx', '0'],
        ['create', '-f', 'vhdx', '-o', 'block_size=512M,subformat=fixed', 'out.vhdx', '0'],
        ['convert', '-f', 'raw', '-O', 'vhdx', '-o', 'block_size=512M', 'empty.raw', 'out.vhdx'],
        ['create', '-f', 'vhdx', '-o', 'block_size=128M', 'ok.vhdx', '0'],
      ],
      { cwd, fresh },
    );
    assert.equal(qemuImg(['info', 'ok.vhdx'], { cwd }).status, 0, 'the largest block size qemu can open');
  });

  it('a resize past what the bitmaps can describe stores none of them and says so', (t) => {
    if (!requireQemu(t)) return;
    for (const size of ['+1P', '512T']) {
      withBitmaps('q.qcow2');
      copyFileSync(join(cwd, 'q.qcow2'), join(cwd, 'v.qcow2'));
      const theirs = qemuImg(['resize', 'q.qcow2', size], { cwd });
      const ours = vdisk(['resize', 'v.qcow2', size], { cwd });
      assert.equal(ours.stdout, theirs.stdout);
      // qemu names its node by a counter ('#block123'); vdisk names the file.
      assert.equal(ours.stderr, asVdisk(theirs.stderr).replace(/#block\d+/, 'v.qcow2'));
      assert.equal(ours.status, theirs.status);
      const info = (f: string): string => qemuImgOk(['info', '--output=json', f], { cwd }).replace(/"(filename|actual-size)": [^\n]*\n/g, '');
      assert.equal(info('v.qcow2'), info('q.qcow2'), 'both open, the bitmaps in use');
      assert.equal(qemuImg(['check', 'v.qcow2'], { cwd }).status, 0);
    }
  });

  it('bits past a shrunk size stay clean when the image grows again', async (t) => {
    if (!requireQemu(t)) return;
    for (const shrunk of ['4128768', '3000320', '2100224']) {
      for (const [tool, file] of [['qemu', 'q.qcow2'], ['vdisk', 'v.qcow2']] as const) {
        withBitmaps(file);
        const run = tool === 'qemu' ? (a: string[]) => qemuImg(a, { cwd }) : (a: string[]) => vdisk(a, { cwd });
        assert.equal(run(['resize', '--shrink', file, shrunk]).status, 0);
        assert.equal(run(['snapshot', '-c', 't1', file]).status, 0);
        assert.equal(run(['resize', file, '8M']).status, 0);
      }
      for (const bitmap of ['bm-on', 'bm-off']) {
        assert.equal(await dirtyRanges(cwd, 'v.qcow2', 'qcow2', bitmap), await dirtyRanges(cwd, 'q.qcow2', 'qcow2', bitmap), `${bitmap} after a shrink to ${shrunk}`);
      }
    }
  });
});
