/**
 * vmdk descriptor extent lines with an offset after the file name on a type
 * other than FLAT (`RW 2048 SPARSE "x" 0`, `RW 2048 BOGUS "x" 0`): qemu reads
 * five fields and refuses the line ("Invalid extent line"), before it looks
 * at the type; vdisk named the unknown type first. (Without the offset qemu
 * skips a line of unknown type and then fails an assertion; vdisk names it.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-vmdk-lines-');
after(() => dir.cleanup());
const cwd = dir.path;

const LINES = ['RW 2048 BOGUS "a b.raw" 0', 'RW 2048 flat "a b.raw" 1', 'RW 2048 SPARSE "a b.raw" 0', 'RW 2048 VMFS "a b.raw" 0', 'RW 2048 FLAT "a b.raw" 0', 'RW 2048 VMFS "a b.raw"'];

describe('vmdk extent lines, read as qemu-img reads them', () => {
  it('every line is taken or refused in qemu-img 7.2 words', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'a b.raw', '1M'], { cwd });
    LINES.forEach((line, i) => {
      // A comment line before the extent (as VMware writes it): qemu reads an extent after a blank line twice.
      const text = `# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\n${line}\n`;
      writeFileSync(join(cwd, `d${i}.vmdk`), text);
    });
    assertCasesMatchQemu(
      LINES.map((_, i) => ['info', `d${i}.vmdk`]),
      { cwd, fresh: () => undefined },
    );
  });
});
