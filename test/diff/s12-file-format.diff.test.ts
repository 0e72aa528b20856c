/**
 * `file` named as the format (`-f file`, `-O file`, `-F file`), as qemu-img
 * takes it: its file protocol node used as the image — read and written
 * like raw, shown as `file format: file`, created with the file protocol's
 * options (`-o help` lists them), never probed, without size measurement
 * or option amendment (and not a device: that is `host_device`'s). The null
 * drivers (`-f null-co null-co://`) and the host device ones (`-f host_device
 * /dev/X`) too. vdisk refused them all (`Unknown driver 'file'`).
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s12-file-format-');
after(() => dir.cleanup());
const cwd = dir.path;

const CASES: readonly (readonly string[])[] = [
  ['info', '-f', 'file', 't.qcow2'],
  ['info', '--output=json', '-f', 'file', 't.qcow2'],
  ['info', '-f', 'file', 'odd.bin'],
  ['map', '-f', 'file', 't.qcow2'],
  ['map', '--output=json', '-f', 'file', 'odd.bin'],
  ['check', '-f', 'file', 't.qcow2'],
  ['compare', '-f', 'file', 't.qcow2', 't.qcow2'],
  ['compare', '-f', 'file', '-F', 'file', 't.qcow2', 't.qcow2'],
  ['convert', '-f', 'file', '-O', 'raw', 't.qcow2', 'OUT'],
  ['convert', '-O', 'file', 't.qcow2', 'OUT'],
  ['convert', '-O', 'file', '-o', 'preallocation=full', 't.qcow2', 'OUT'],
  ['convert', '-f', 'raw', '-O', 'file', '-c', 't.qcow2', 'OUT'],
  ['convert', '-O', 'file', '-n', 't.qcow2', 'r.raw'],
  ['convert', '-O', 'file', '-o', 'help'],
  ['convert', '-O', 'file', '-o', 'help', 't.qcow2', 'OUT'],
  ['dd', '-O', 'file', 'if=t.qcow2', 'of=OUT'],
  ['create', '-f', 'file', 'OUT', '1M'],
  ['create', '-f', 'file', 'OUT', '1000'],
  ['create', '-f', 'file', '-o', 'preallocation=falloc', 'OUT', '1M'],
  ['create', '-f', 'file', '-o', 'size=1M,nocow=on', 'OUT'],
  ['create', '-f', 'file', '-o', 'help'],
  ['create', '-f', 'file', '-o', 'help', 'OUT'],
  ['create', '-f', 'qcow2', '-b', 'r.raw', '-F', 'file', 'OUT', '1M'],
  ['measure', '-f', 'file', '-O', 'raw', 't.qcow2'],
  ['measure', '-O', 'file', '--size', '1M'],
  ['amend', '-f', 'file', '-o', 'size=2M', 'r.raw'],
  ['resize', '-f', 'file', 'r.raw', '3M'],
  ['rebase', '-u', '-b', 'r.raw', '-F', 'file', 't.qcow2'],
  ['info', '-f', 'file', '/dev/null'],
  // The other protocols qemu-img takes as a format: the null devices and host devices.
  ['info', '-f', 'null-co', 'null-co://'],
  ['info', '--output=json', '-f', 'null-co', 'null-co://'],
  ['info', '-f', 'null-aio', 'null-aio://'],
  ['map', '--output=json', '-f', 'null-co', 'null-co://'],
  ['info', '-f', 'null-co', 't.qcow2'],
  ['info', '-f', 'null-aio', 'nope'],
  ['info', '-f', 'host_device', 't.qcow2'],
  ['info', '-f', 'host_cdrom', 't.qcow2'],
  ['info', '-f', 'host_device', 'nope'],
  ['info', '-f', 'host_device', '/dev/null'],
];

function fresh(): void {
  rmSync(join(cwd, 'OUT'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'raw', 'odd.bin', '1000'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'], { cwd });
}

/** What the command left: the new file's info and length, and the changed images' info. */
function outcome(): string {
  const out = existsSync(join(cwd, 'OUT')) ? `${qemuImgOk(['info', 'OUT'], { cwd })} length ${statSync(join(cwd, 'OUT')).size}` : 'no OUT';
  return `${out}\n${qemuImgOk(['info', 'r.raw'], { cwd })}\n${qemuImgOk(['info', 't.qcow2'], { cwd })}`;
}

describe('file as the format, as qemu-img takes it', () => {
  it('every case prints, exits and leaves files as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(CASES, { cwd, fresh, outcome });
  });
});
