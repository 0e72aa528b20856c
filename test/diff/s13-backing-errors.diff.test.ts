/**
 * A backing file that fails to open, worded as qemu-img words it: the top
 * image named once, one "Could not open backing file: " per level down to the
 * failed file, then that file's own error (a file error names the file, a
 * format error does not); `info --backing-chain` opens each image by its own
 * name, so it names the failed file instead; a directory in the words of
 * qemu's file driver. vdisk named the image just above the failed file, once,
 * and prefixed format errors with the file's name.
 */
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-backing-errors-');
after(() => dir.cleanup());
const cwd = dir.path;

/** A qcow2 overlay `file` recording `backing` (not opened) as format `format`. */
function overlay(file: string, backing: string, format = 'qcow2'): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', format, file, '1M'], { cwd });
}

function fresh(): void {
  overlay('missing1.qcow2', 'missing.qcow2');
  overlay('missing2.qcow2', 'missing1.qcow2');
  overlay('missing3.qcow2', 'missing2.qcow2');
  qemuImgOk(['create', '-q', '-f', 'raw', 'plain.raw', '1M'], { cwd });
  overlay('wrongfmt1.qcow2', 'plain.raw');
  overlay('wrongfmt2.qcow2', 'wrongfmt1.qcow2');
  mkdirSync(join(cwd, 'adir'), { recursive: true });
  overlay('dir.qcow2', 'adir');
  // A qcow2 whose cluster_bits (byte 23) is 40.
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'bad.qcow2', '1M'], { cwd });
  const fd = openSync(join(cwd, 'bad.qcow2'), 'r+');
  writeSync(fd, Buffer.from([0, 0, 0, 40]), 0, 4, 20);
  closeSync(fd);
  overlay('corrupt1.qcow2', 'bad.qcow2');
  overlay('corrupt2.qcow2', 'corrupt1.qcow2');
}

const TOPS = ['missing1', 'missing2', 'missing3', 'wrongfmt1', 'wrongfmt2', 'dir', 'corrupt1', 'corrupt2'].map((n) => `${n}.qcow2`);

describe('backing files that fail to open, worded as qemu-img words them', () => {
  it('map, convert, check and info --backing-chain', (t) => {
    if (!requireQemu(t)) return;
    fresh();
    assertCasesMatchQemu(
      [
        ...TOPS.flatMap((f) => [['map', f], ['info', '--backing-chain', f]]),
        ['convert', '-O', 'raw', 'missing2.qcow2', 'OUT'],
        ['check', 'corrupt2.qcow2'],
        ['info', '--backing-chain', '--output=json', 'missing2.qcow2'],
        ['compare', 'missing1.qcow2', 'plain.raw'],
      ],
      { cwd, fresh: () => undefined },
    );
  });
});
