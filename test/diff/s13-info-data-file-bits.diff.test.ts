/**
 * `info` of a qcow2 whose data-file bits say what the header cannot back:
 * the external data file bit without a data file name, or data-file-raw
 * without an external data file. qemu-img 7.2 (with the CVE-2024-4467 fix)
 * describes such images without opening or checking a data file; every other
 * command refuses them. vdisk's info refused them too.
 */
import { openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-info-data-file-');
after(() => dir.cleanup());
const cwd = dir.path;

/** Sets the 64-bit big-endian header field at `offset` of `file`. */
function setField(file: string, offset: number, value: bigint): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(value);
  const fd = openSync(join(cwd, file), 'r+');
  writeSync(fd, b, 0, 8, offset);
  closeSync(fd);
}

describe('info of qcow2 data-file bits the header cannot back, as qemu-img', () => {
  it('info describes them, other commands refuse them', (t) => {
    if (!requireQemu(t)) return;
    const fresh = (): void => {
      qemuImgOk(['create', '-q', '-f', 'qcow2', 'nodf.qcow2', '1M'], { cwd });
      setField('nodf.qcow2', 72, 4n); // incompatible: external data file, but no name
      qemuImgOk(['create', '-q', '-f', 'qcow2', 'raw.qcow2', '1M'], { cwd });
      setField('raw.qcow2', 88, 2n); // autoclear: data-file-raw, but no data file
    };
    const cases = ['nodf.qcow2', 'raw.qcow2'].flatMap((f) => [
      ['info', f],
      ['info', '--output=json', f],
      ['info', '--backing-chain', f],
      ['check', f],
      ['map', f],
      ['snapshot', '-l', f],
    ]);
    assertCasesMatchQemu(cases, { cwd, fresh });
  });
});
