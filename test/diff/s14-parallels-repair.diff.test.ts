/**
 * `check -r all` of a Parallels image whose BAT points far past the end of
 * the file: qemu repairs the entry, then parallels_close tries to cut the
 * file to a data end still counted from the bad entry and ignores the
 * failure; vdisk reported it ("Could not resize …: File too large") and
 * exited 1. The neighbouring checks come along.
 */
import { describe, it, after } from 'node:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-parallels-repair-');
after(() => dir.cleanup());
const cwd = dir.path;

/** The first BAT entry (at byte 64) made to point 2^24 units away. */
function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'parallels', 'p.hdd', '8M'], { cwd });
  if (hasQemuIo) qemuIo(join(cwd, 'p.hdd'), ['write -P 1 0 64k', 'write -P 2 3M 64k'], 'parallels');
  const d = readFileSync(join(cwd, 'p.hdd'));
  d.writeUInt32LE(0x00ffffff, 64);
  writeFileSync(join(cwd, 'p.hdd'), d);
}

describe('check -r of a Parallels BAT entry far past the end, as qemu-img', () => {
  it('repairs and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    if (!hasQemuIo) return t.skip('qemu-io not found');
    assertCasesMatchQemu(
      [['check', 'p.hdd'], ['check', '-r', 'leaks', 'p.hdd'], ['check', '-r', 'all', 'p.hdd'], ['check', '-r', 'all', '--output=json', 'p.hdd']],
      { cwd, fresh, outcome: () => qemuImg(['check', 'p.hdd'], { cwd }).stdout },
    );
  });
});
