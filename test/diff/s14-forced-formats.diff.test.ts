/**
 * Files opened with a format they are not in, and a VMDK descriptor file
 * longer than qemu reads. vmdk_read_desc parses the first 1 MiB - 1 of a
 * descriptor file whatever its length, so a 10 MiB raw file forced to vmdk
 * is an "invalid VMDK image descriptor" and a descriptor with a long tail
 * opens; vdisk refused both files by their size. vhdx_open fails a file
 * without the "vhdxfile" signature with a bare EINVAL, which qemu words as
 * "Could not open 'F': Invalid argument"; vdisk had its own words.
 */
import { describe, it, after } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-forced-formats-');
after(() => dir.cleanup());
const cwd = dir.path;

const DESCRIPTOR = '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "t.raw" 0\n';

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'raw', 'big.raw', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'raw', 't.raw', '1M'], { cwd });
  writeFileSync(join(cwd, 'long.vmdk'), DESCRIPTOR + '#'.repeat(2_000_000));
}

describe('files opened in a format they are not in, as qemu-img', () => {
  it('fails and opens as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      [
        ['info', '-f', 'vmdk', 'big.raw'],
        ['info', '-f', 'vmdk', 't.raw'],
        ['info', 'long.vmdk'],
        ['map', '--output=json', '-f', 'vmdk', 'long.vmdk'],
        ['info', '-f', 'vhdx', 'big.raw'],
        ['check', '-f', 'vhdx', 't.raw'],
      ],
      { cwd, fresh },
    );
  });
});
