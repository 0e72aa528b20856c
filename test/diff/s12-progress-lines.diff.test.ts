/**
 * The `-p` line where a command fails, as qemu-img draws it: each command
 * sets its progress up and draws its first line at its own point. commit
 * draws nothing when the image does not open (its progress starts after
 * the open); compare and amend end with a bare newline when they fail
 * before their first line (a bad `-T`/`-t`, an image that does not open, a
 * bad option, `-o help`), and amend draws 100% before the newline once it
 * has started; rebase draws its first line before it checks `-t` and `-T`,
 * and 100% when the backing file cannot be changed. vdisk drew its first
 * line as each job started, so these differed. Successful runs whose lines
 * do not depend on timing are checked too.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s12-progress-');
after(() => dir.cleanup());
const cwd = dir.path;

const CASES: readonly (readonly string[])[] = [
  ['convert', '-p', 'nope.qcow2', 'o.raw'],
  ['convert', '-p', '-O', 'bogus', 't.qcow2', 'o.raw'],
  ['convert', '-p', '-t', 'bogus', 't.qcow2', 'o.raw'],
  ['commit', '-p', 'nope.qcow2'],
  ['commit', '-p', '-f', 'bogus', 't.qcow2'],
  ['commit', '-p', 'n.qcow2'],
  ['commit', '-p', '-b', 'nope', 't.qcow2'],
  ['commit', '-p', '-t', 'bogus', 't.qcow2'],
  ['compare', '-p', 'nope.qcow2', 't.qcow2'],
  ['compare', '-p', 't.qcow2', 'nope.qcow2'],
  ['compare', '-p', '-f', 'bogus', 't.qcow2', 'b.qcow2'],
  ['compare', '-p', '-T', 'bogus', 't.qcow2', 'b.qcow2'],
  ['compare', '-p', '-s', 't.qcow2', 'big.qcow2'],
  ['compare', '-p', '--image-opts', '-f', 'qcow2', 'driver=qcow2,file.filename=t.qcow2', 'driver=qcow2,file.filename=b.qcow2'],
  ['compare', '-p', 't.qcow2', 'b.qcow2'],
  ['rebase', '-p', '-b', 'nope.qcow2', 't.qcow2'],
  ['rebase', '-p', '-b', 'b.qcow2', 'nope.qcow2'],
  ['rebase', '-p', '-t', 'bogus', '-b', 'b.qcow2', 't.qcow2'],
  ['rebase', '-p', '-T', 'bogus', '-b', 'b.qcow2', 't.qcow2'],
  ['rebase', '-p', '-F', 'bogus', '-b', 'b.qcow2', 't.qcow2'],
  ['rebase', '-p', '-f', 'bogus', '-b', 'b.qcow2', 't.qcow2'],
  ['rebase', '-p', '-u', '-b', 'nope.qcow2', 't.qcow2'],
  ['rebase', '-p', '-b', 'b.qcow2', 't.qcow2'],
  ['rebase', '-p', '-b', 'n.qcow2', '-F', 'qcow2', 't.qcow2'],
  ['amend', '-p', '-o', 'bogus=1', 't.qcow2'],
  ['amend', '-p', '-o', 'compat=0.10', 'nope.qcow2'],
  ['amend', '-p', '-o', 'size=1', 't.qcow2'],
  ['amend', '-p', '-f', 'raw', '-o', 'size=1', 't.qcow2'],
  ['amend', '-p', '-t', 'bogus', '-o', 'compat=0.10', 't.qcow2'],
  ['amend', '-p', '-t', 'bogus', '-o', 'compat=0.10'],
  ['amend', '-p', '-o', 'compat=0.10', 't.qcow2', 'x'],
  ['amend', '-p', '-o', 'help', 't.qcow2'],
  ['amend', '-p', '-f', 'qcow2', '-o', 'help'],
  ['amend', '-p', '--image-opts', '-f', 'qcow2', '-o', 'compat=0.10', 'driver=qcow2,file.filename=t.qcow2'],
  ['amend', '-p', '-o', 'compat=0.10', 'n.qcow2'],
  ['amend', '-p', '-q', '-o', 'bogus=1', 't.qcow2'],
];

function fresh(): void {
  rmSync(join(cwd, 'o.raw'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'n.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'big.qcow2', '2M'], { cwd });
}

describe('-p lines where commands fail, as qemu-img draws them', () => {
  it('every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    // JSON: the progress lines' \r shown.
    assertCasesMatchQemu(CASES, { cwd, fresh, stdout: (text) => JSON.stringify(text) });
  });
});
