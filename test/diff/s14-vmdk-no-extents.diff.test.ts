/**
 * A VMDK descriptor without extent lines: what `create -f vmdk -o
 * subformat=twoGbMaxExtentSparse` (or twoGbMaxExtentFlat) of size 0 writes,
 * in both tools. qemu-img opens it as an empty disk (check, map and measure
 * work; info and convert abort on an assertion in vmdk_get_info); vdisk
 * refused to open it ("VMDK descriptor lists no extents"), so a convert of an
 * empty image into that subformat failed after writing the target. It now
 * opens as a disk of 0 bytes: the commands qemu-img completes print what
 * qemu-img prints, and info and convert complete.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-vmdk-no-extents-');
after(() => dir.cleanup());
const cwd = dir.path;

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', 's.vmdk', '0'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', 'f.vmdk', '0'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'empty.qcow2', '0'], { cwd });
}

describe('a VMDK descriptor without extents', () => {
  it('checks, maps and measures as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      [
        ['check', 's.vmdk'],
        ['check', '--output=json', 'f.vmdk'],
        ['map', 's.vmdk'],
        ['map', '--output=json', 'f.vmdk'],
        ['measure', '-O', 'qcow2', 's.vmdk'],
        ['compare', 's.vmdk', 'empty.qcow2'],
        ['snapshot', '-l', 's.vmdk'],
        ['resize', 's.vmdk', '1M'],
      ],
      { cwd, fresh },
    );
  });

  it('is described and converted as an empty disk, where qemu-img aborts', (t) => {
    if (!requireQemu(t)) return;
    fresh();
    const info = vdisk(['info', '--output=json', 's.vmdk'], { cwd });
    assert.equal(info.status, 0, info.stderr);
    const json = JSON.parse(info.stdout) as { 'virtual-size': number; 'format-specific': { data: { 'create-type': string; extents: unknown[] } } };
    assert.equal(json['virtual-size'], 0);
    assert.equal(json['format-specific'].data['create-type'], 'twoGbMaxExtentSparse');
    assert.deepEqual(json['format-specific'].data.extents, []);
    // The sweep's case: an empty image converted into the subformat, then read back.
    const convert = vdisk(['convert', '-f', 'qcow2', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', 'empty.qcow2', 'out.vmdk'], { cwd });
    assert.equal(convert.status, 0, convert.stderr);
    assert.equal(qemuImg(['check', 'out.vmdk'], { cwd }).status, 0);
    const back = vdisk(['convert', '-O', 'raw', 'out.vmdk', 'out.raw'], { cwd });
    assert.equal(back.status, 0, back.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', 'out.raw', 'empty.qcow2'], { cwd }).stdout, 'Images are identical.\n');
  });
});
