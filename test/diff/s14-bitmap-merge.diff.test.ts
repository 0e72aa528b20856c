/**
 * `bitmap --merge` from a bitmap of another size: qemu 7.2's
 * bdrv_merge_dirty_bitmap names both sizes ("Bitmaps are of different sizes
 * (destination size is N, source size is M) and can't be merged"); vdisk
 * said only that they were incompatible. The neighbouring merges (another
 * granularity, a missing source bitmap, a source without bitmaps) with them.
 */
import { describe, it, after } from 'node:test';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-bitmap-merge-');
after(() => dir.cleanup());
const cwd = dir.path;

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.q', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'big.q', '20M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'coarse.q', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '10M'], { cwd });
  qemuImgOk(['bitmap', '--add', 'x.q', 'b'], { cwd });
  qemuImgOk(['bitmap', '--add', 'big.q', 'c'], { cwd });
  qemuImgOk(['bitmap', '--add', '-g', '1M', 'coarse.q', 'c'], { cwd });
  if (hasQemuIo) qemuIo(join(cwd, 'coarse.q'), ['write 0 64k', 'write 5M 1k'], 'qcow2');
}

describe('bitmap --merge, as qemu-img', () => {
  it('refuses and merges as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      [
        ['bitmap', '--merge', 'c', '-b', 'big.q', '-F', 'qcow2', 'x.q', 'b'],
        ['bitmap', '--add', '--merge', 'c', '-b', 'big.q', '-F', 'qcow2', 'x.q', 'n'],
        ['bitmap', '--merge', 'd', '-b', 'big.q', '-F', 'qcow2', 'x.q', 'b'],
        ['bitmap', '--merge', 'd', '-b', 'r.raw', '-F', 'raw', 'x.q', 'b'],
        ['bitmap', '--merge', 'c', '-b', 'coarse.q', '-F', 'qcow2', 'x.q', 'b'],
      ],
      { cwd, fresh, outcome: () => qemuImg(['info', '--output=json', 'x.q'], { cwd }).stdout.replace(/"actual-size": \d+/, '') },
    );
  });
});
