/**
 * Empty names and out-of-range dd operands, as qemu-img answers them:
 * an empty image name is refused by the file driver ("requires a file
 * name") before any file is looked for, an empty backing file name by
 * bdrv_img_create ("Expected backing file name"; convert asks for the
 * backing format first), and `dd count=`/`skip=` take any number of blocks
 * up to INT64_MAX. vdisk answered "No such file or directory", "Could not
 * open backing image" and "larger than vdisk supports". Also: errno codes
 * the C library's text table lacked (ENAMETOOLONG printed as is) and a
 * qcow2 backing name past 1023 bytes, refused in vdisk's own words; a target
 * name ending in '/', written under a temporary name and refused only at the
 * rename (naming the temporary file).
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-empty-names-');
after(() => dir.cleanup());
const cwd = dir.path;

const LONG_NAME = 'n'.repeat(300);
const LONG_BACKING = 'b'.repeat(1024);

const CASES: readonly (readonly string[])[] = [
  ['info', ''],
  ['info', '-f', 'qcow2', ''],
  ['check', ''],
  ['map', ''],
  ['measure', '-O', 'qcow2', ''],
  ['convert', '', 'OUT'],
  ['snapshot', '-l', ''],
  ['resize', '', '1M'],
  ['amend', '-o', 'compat=v3', ''],
  ['commit', ''],
  ['compare', '', ''],
  ['compare', 's.raw', ''],
  ['rebase', '-u', '-b', '', ''],
  ['bitmap', '--add', '', 'b'],
  ['dd', 'if=', 'of=OUT'],
  // host_device: keeps naming its own driver.
  ['info', 'host_device:'],
  ['create', '-f', 'qcow2', '-b', '', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-b', '', 'OUT'],
  ['create', '-f', 'qcow2', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-u', '-b', '', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-u', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-o', 'backing_file=', 'OUT', '1M'],
  ['create', '-f', 'qed', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'vmdk', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'qcow', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'raw', '-b', '', '-F', 'raw', 'OUT', '1M'],
  ['convert', '-O', 'qcow2', '-B', '', 's.raw', 'OUT'],
  ['convert', '-O', 'qcow2', '-o', 'backing_file=', 's.raw', 'OUT'],
  ['convert', '-O', 'qcow2', '-B', 'OUT', 's.raw', 'OUT'],
  // 2^53 blocks and more: all of the input; past its end.
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1k', 'count=9999999999999999'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1k', 'count=9223372036854775807'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1k', 'count=9223372036854775808'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1k', 'skip=9999999999999999'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1', 'skip=8E'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=512', 'count=7E', 'skip=1'],
  ['dd', 'if=s.qcow2', 'of=OUT', 'bs=1', 'count=9007199254740991', 'skip=4194303'],
  // A name longer than the file system takes: the C library's words, not Node's code.
  ['info', LONG_NAME],
  ['create', '-f', 'qcow2', LONG_NAME, '1M'],
  // A backing name longer than qcow2's 1023 bytes: refused where qemu records it, in its words.
  ['create', '-f', 'qcow2', '-u', '-b', LONG_BACKING, '-F', 'raw', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-u', '-b', LONG_BACKING, '-F', 'raw', '-o', 'compat=0.10,lazy_refcounts=on', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-u', '-b', LONG_BACKING.slice(1), '-F', 'raw', 'OUT', '1M'],
  ['convert', '-O', 'qcow2', '-B', LONG_BACKING, '-F', 'raw', 's.raw', 'OUT'],
  // A name ending in '/' names a directory: refused when it is created, nothing left behind.
  ['create', '-f', 'qcow2', 'OUT/', '1M'],
  ['convert', '-O', 'qcow2', 's.raw', 'OUT/'],
  ['convert', '-O', 'raw', 's.raw', 's.raw/'],
  ['dd', 'if=s.raw', 'of=OUT/'],
];

function fresh(): void {
  rmSync(join(cwd, 'OUT'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'raw', 's.raw', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 's.qcow2', '4M'], { cwd });
}

/** The new file's info and length, and every name in the directory (no temporary file left). */
function outcome(): string {
  const out = existsSync(join(cwd, 'OUT')) ? `${qemuImgOk(['info', '-U', 'OUT'], { cwd })} length ${statSync(join(cwd, 'OUT')).size}` : 'no OUT';
  return `${out}\n${readdirSync(cwd).sort().join(' ')}`;
}

describe('empty names and dd operands past 2^53, as qemu-img answers them', () => {
  it('every case prints, exits and leaves files as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(CASES, { cwd, fresh, outcome });
  });
});
