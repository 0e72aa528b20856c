/**
 * Of two things wrong on one command line, the one qemu-img reports: an
 * unknown format (`-f bogus`, `-F bogus`) before the file is looked at,
 * so a missing file says "Unknown driver 'bogus'" in every command (vdisk
 * opened the file first and said "No such file or directory"); and for
 * info, check and map the operand count before `--output`, then check's
 * `-T`, in the order their post-getopt code checks them.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s11-order-');
after(() => dir.cleanup());
const cwd = dir.path;

const CASES: readonly (readonly string[])[] = [
  ['info', '--output=bogus'],
  ['info', '--output=bogus', 'a', 'b'],
  ['info', '-f', 'bogus', 'nonexist'],
  ['info', '-f', 'bogus', '--output=bogus', 'r.raw'],
  ['check', '--output=bogus'],
  ['check', '--output=bogus', 'a', 'b'],
  ['check', '-T', 'bogus', '--output=bogus', 'r.raw'],
  ['check', '-T', 'bogus', '--output=bogus'],
  ['check', '-f', 'bogus', 'nonexist'],
  ['map', '--output=bogus'],
  ['map', '--output=bogus', 'a', 'b'],
  ['map', '-f', 'bogus', 'nonexist'],
  ['compare', '-f', 'bogus', 'nonexist', 'r.raw'],
  ['compare', '-F', 'bogus', 'r.raw', 'nonexist'],
  ['convert', '-f', 'bogus', 'nonexist', 'out'],
  ['convert', '-f', 'raw', '-O', 'bogus', 'nonexist', 'out'],
  ['measure', '-f', 'bogus', '-O', 'qcow2', 'nonexist'],
  ['commit', '-f', 'bogus', 'nonexist'],
  ['rebase', '-f', 'bogus', '-u', '-b', 'r.raw', '-F', 'raw', 'nonexist'],
  ['resize', '-f', 'bogus', 'nonexist', '1M'],
  ['amend', '-f', 'bogus', '-o', 'x=y', 'nonexist'],
  ['bitmap', '-f', 'bogus', '--add', 'nonexist', 'b0'],
  ['dd', '-f', 'bogus', 'if=nonexist', 'of=out'],
  ['bench', '-f', 'bogus', 'nonexist'],
  ['snapshot', '-f', 'bogus', '-l', 'nonexist'],
];

describe('which of two errors is reported, as qemu-img reports it', () => {
  it('every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
    for (const args of CASES) {
      rmSync(join(cwd, 'out'), { force: true });
      const theirs = qemuImg(args, { cwd });
      rmSync(join(cwd, 'out'), { force: true });
      const ours = vdisk(args, { cwd });
      const what = args.join(' ');
      assert.equal(ours.stdout, theirs.stdout, what);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), what);
      assert.equal(ours.status, theirs.status, what);
    }
  });
});
