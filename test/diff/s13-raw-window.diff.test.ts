/**
 * raw's `offset`/`size` window over a file whose length is not a whole number
 * of sectors: qemu measures the containing file in whole sectors
 * (bdrv_getlength), so its checks and messages name the rounded length and a
 * window that follows the file's end is that much longer. vdisk used the
 * byte length ("actual size of the containing file (196616)" for 197120).
 */
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-raw-window-');
after(() => dir.cleanup());
const cwd = dir.path;

const opts = (extra: string): string => `driver=raw,file.filename=q.qcow2,${extra}`;

describe("raw's window over a file that ends inside a sector, as qemu-img measures it", () => {
  it('every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    // A new 1 MiB qcow2 is 196616 bytes: 197120 in whole sectors.
    const fresh = (): void => void qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
    assertCasesMatchQemu(
      [
        ...['offset=511', 'offset=512', 'offset=196616', 'offset=196617', 'offset=197120', 'offset=197121', 'size=197120', 'size=197632', 'size=100000000', 'offset=100,size=196608', 'offset=1000,size=196608'].map(
          (o) => ['info', '--image-opts', opts(o)],
        ),
        ['info', '--output=json', '--image-opts', opts('offset=511')],
      ],
      { cwd, fresh },
    );
  });
});
