/**
 * convert -S from sources whose qemu driver answers block status one unit at
 * a time (vmdk grains, qcow clusters, vdi blocks): qemu-img scans each
 * status run for zeros on its own, so a unit of zeros between data units
 * becomes a hole in the target whatever `-S` says, and zeros at a unit's
 * edge count from that edge. vdisk joined the units into one run first and
 * wrote such zeros as data (sweep seed 9041: `convert -S 16M -f vmdk -O raw`).
 * Outputs are compared by their maps (where the holes are).
 */
import { describe, it, after } from 'node:test';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-status-span-');
after(() => dir.cleanup());
const cwd = dir.path;

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', 's.vmdk', '4M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow', 's.qcow', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'vdi', 's.vdi', '8M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'raw', 'head.raw', '32k'], { cwd });
  qemuIo(join(cwd, 's.vmdk'), ['write -P 0x11 0 64k', 'write -P 0x33 2M 192k', 'write -z 2162688 64k', 'write -z 2225152 1k'], 'vmdk');
  qemuIo(join(cwd, 's.qcow'), ['write -P 0x33 0 64k', 'write -z 8k 4k', 'write -z 30k 2k'], 'qcow');
  qemuIo(join(cwd, 's.vdi'), ['write -P 0x33 0 3M', 'write -z 1M 1M'], 'vdi');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 's.vmdk', '-F', 'vmdk', 'top.qcow2'], { cwd });
}

const map = (name: string, format: string): (() => string) => () => qemuImg(['map', '--output=json', '-f', format, name], { cwd }).stdout;

describe('convert -S from per-unit block status, as qemu-img', () => {
  it('leaves the holes qemu-img 7.2 leaves', (t) => {
    if (!requireQemu(t)) return;
    if (!hasQemuIo) return t.skip('qemu-io not found');
    const cases: [string[], () => string][] = [
      [['convert', '-S', '16M', '-f', 'vmdk', '-O', 'raw', 's.vmdk', 'o.raw'], map('o.raw', 'raw')],
      [['convert', '-S', '4k', '-O', 'raw', 's.vmdk', 'o.raw'], map('o.raw', 'raw')],
      [['convert', '-S', '1M', '-O', 'qcow2', 's.vmdk', 'o.qcow2'], map('o.qcow2', 'qcow2')],
      [['convert', '-S', '64k', '-O', 'vmdk', 's.vmdk', 'o.vmdk'], map('o.vmdk', 'vmdk')],
      [['convert', '-S', '1M', '-O', 'raw', 'top.qcow2', 'o.raw'], map('o.raw', 'raw')],
      [['convert', '-S', '1M', '-O', 'raw', 'head.raw', 's.vmdk', 'o.raw'], map('o.raw', 'raw')],
      [['convert', '-S', '64k', '-O', 'raw', 's.qcow', 'o.raw'], map('o.raw', 'raw')],
      [['convert', '-O', 'qcow2', 's.qcow', 'o.qcow2'], map('o.qcow2', 'qcow2')],
      [['convert', '-S', '2M', '-O', 'vmdk', 's.vdi', 'o.vmdk'], map('o.vmdk', 'vmdk')],
      [['convert', '-S', '0', '-O', 'raw', 's.vdi', 'o.raw'], map('o.raw', 'raw')],
    ];
    for (const [args, outcome] of cases) assertCasesMatchQemu([args], { cwd, fresh, outcome });
  });
});
