/**
 * `convert -C` from formats whose qemu drivers have no copy_range (qed,
 * vmdk, vpc, a qcow2 over one of them, a compressed cluster): qemu-img's
 * first request there fails with ENOTSUP and it stops offloading for the rest
 * of the copy, reading and scanning for zeros instead. vdisk offloaded every
 * uncompressed run, so the 4 KiB written inside a 64 KiB cluster came out as
 * the whole cluster of data (sweep seed 6161, `convert -C -f qed -O raw`).
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-copy-offload-');
after(() => dir.cleanup());
const cwd = dir.path;

/** An image of `format` with 4 KiB inside a 64 KiB cluster and a whole cluster written. */
function image(file: string, format: string, writes = ['write -P 1 999424 4k', 'write -P 2 2M 64k']): void {
  rmSync(join(cwd, file), { force: true });
  qemuImgOk(['create', '-q', '-f', format, file, '4M'], { cwd });
  const r = qemuIo(join(cwd, file), writes, format);
  if (r.status !== 0) throw new Error(r.stderr);
}

function fresh(): void {
  rmSync(join(cwd, 'OUT'), { force: true });
  for (const f of ['qed', 'vmdk', 'vpc', 'qcow2', 'raw']) image(`s.${f}`, f);
  image('c.qcow2', 'qcow2', ['write -P 2 0 4k', 'write -c -P 1 1M 64k', 'write -P 2 2M 4k']);
  image('b.vmdk', 'vmdk', ['write -P 1 999424 4k']);
  rmSync(join(cwd, 'top.qcow2'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.vmdk', '-F', 'vmdk', 'top.qcow2'], { cwd });
  qemuIo(join(cwd, 'top.qcow2'), ['write -P 2 0 64k', 'write -P 3 3M 4k'], 'qcow2');
}

/** Where the copy has data and holes, as qemu-img maps the raw file. */
function outcome(): string {
  return existsSync(join(cwd, 'OUT')) ? qemuImgOk(['map', '--output=json', '-f', 'raw', 'OUT'], { cwd }) : 'no OUT';
}

describe('convert -C stops offloading where qemu-img does', () => {
  it('every copy has data and holes where qemu-img puts them', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      [
        ['convert', '-C', '-f', 'qed', '-O', 'raw', 's.qed', 'OUT'],
        ['convert', '-C', '-f', 'vmdk', '-O', 'raw', 's.vmdk', 'OUT'],
        ['convert', '-C', '-f', 'vpc', '-O', 'raw', 's.vpc', 'OUT'],
        ['convert', '-C', '-f', 'qcow2', '-O', 'raw', 's.qcow2', 'OUT'],
        ['convert', '-C', '-f', 'raw', '-O', 'raw', 's.raw', 'OUT'],
        ['convert', '-C', '-O', 'raw', 'top.qcow2', 'OUT'],
        ['convert', '-C', '-f', 'qcow2', '-O', 'raw', 'c.qcow2', 'OUT'],
        ['convert', '-C', '-O', 'raw', 's.qed', 's.vmdk', 'OUT'],
      ],
      { cwd, fresh, outcome },
    );
  });
});
