/**
 * `amend -o help` on an image whose format is probed: img_amend opens the
 * image writable before it looks at the options, so a probed raw image gets
 * qemu's probing warning before "does not support option amendment"; vdisk
 * looked the format up read-only and printed no warning.
 */
import { describe, it, after } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-amend-help-');
after(() => dir.cleanup());
const cwd = dir.path;

describe('amend -o help on a probed image, as qemu-img', () => {
  it('prints, warns and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    const fresh = (): void => {
      qemuImgOk(['create', '-q', '-f', 'raw', 'r.img', '1M'], { cwd });
      qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.img', '1M'], { cwd });
      qemuImgOk(['create', '-q', '-f', 'vmdk', 'v.img', '1M'], { cwd });
    };
    assertCasesMatchQemu(
      [
        ['amend', '-o', 'help', 'r.img'],
        ['amend', '-f', 'raw', '-o', 'help', 'r.img'],
        ['amend', '-o', 'help', 'json:{"driver":"raw","file":{"driver":"file","filename":"r.img"}}'],
        ['amend', '-o', 'help', '--image-opts', 'driver=file,filename=r.img'],
        ['amend', '-o', 'help', 'q.img'],
        ['amend', '-o', 'help', 'v.img'],
      ],
      { cwd, fresh },
    );
  });
});
