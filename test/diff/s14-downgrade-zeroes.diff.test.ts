/**
 * `amend -o compat=0.10` turns zero clusters that must stay allocated (over
 * a backing file, or preallocated) into data clusters of zeros. qemu zeroes
 * them with bdrv_pwrite_zeroes, which leaves a hole in a sparse image file
 * (`map` shows "zero": true over them); vdisk wrote zero bytes (sweep seed
 * 10111). The maps are compared.
 */
import { describe, it, after } from 'node:test';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-downgrade-zeroes-');
after(() => dir.cleanup());
const cwd = dir.path;

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'base.qcow2', '4M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
  qemuIo(join(cwd, 'base.qcow2'), ['write -P 9 0 4M'], 'qcow2');
  qemuIo(join(cwd, 'top.qcow2'), ['write -P 1 0 64k', 'write -z 64k 128k', 'write -P 2 2M 64k', 'write -z 2M 64k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', 'pre.qcow2', '1M'], { cwd });
  qemuIo(join(cwd, 'pre.qcow2'), ['write -z 0 512k'], 'qcow2');
}

describe('amend -o compat=0.10 over zero clusters, as qemu-img', () => {
  it('zeroes the clusters it keeps as qemu-img 7.2 does', (t) => {
    if (!requireQemu(t)) return;
    if (!hasQemuIo) return t.skip('qemu-io not found');
    for (const image of ['top.qcow2', 'pre.qcow2']) {
      const outcome = (): string => qemuImg(['map', '--output=json', image], { cwd }).stdout + qemuImg(['check', image], { cwd }).stdout;
      assertCasesMatchQemu([['amend', '-o', 'compat=0.10', image]], { cwd, fresh, outcome });
    }
  });
});
