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
  // --object: qemu's JSON parser and messages, JSON only from a first '{', and compare's exit 2
  ...['compare', 'info'].flatMap((c) =>
    ['{bad', '{}', '[1]', '{"qom-type":"secret","id":"x","data":"a"', '{"qom-type":"secret","id":"x","file":"/nonexistent/s"}', ' {"qom-type":"secret"}', 'secret,id=x', 'secret,id=x,data=a,keyid=y', 'bogus,id=x'].map((o) =>
      c === 'compare' ? ['compare', '--object', o, 'r.raw', 'r.raw'] : ['info', '--object', o, 'r.raw'],
    ),
  ),
  // img_rebase: the operand count, -b or -u, then -t and -T
  ['rebase', '-t', 'bogus', 'r.raw'],
  ['rebase', '-T', 'bogus', '-t', 'bogus', 'r.raw'],
  ['rebase', '-t', 'bogus', '-u', 'a', 'b'],
  ['rebase', '-T', 'bogus', '-t', 'bogus', '-u', 'r.raw'],
  ['rebase', '-T', 'bogus', '-u', 'r.raw'],
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
  // -U shares the input only: the output was opened with force-share and refused
  ['dd', '-U', 'if=r.raw', 'of=out'],
  ['dd', '-U', '-O', 'qcow2', 'if=r.raw', 'of=out'],
  ['bench', '-f', 'bogus', 'nonexist'],
  ['snapshot', '-f', 'bogus', '-l', 'nonexist'],
  // no action: qemu-img opens the image for writing, so -U is refused
  ['snapshot', '-U', 'r.raw'],
  ['snapshot', '-q', 'r.raw'],
];

/** img_convert's order: its post-getopt checks, -o help, the operand count, -T, the sources, -O and -o, compression, --bitmaps, the create, then -t. */
const CONVERT: readonly (readonly string[])[] = [
  ['-O', 'bogus', '-t', 'bogus'],
  ['-t', 'bogus', '-f', 'bogus'],
  ['-t', 'bogus', '-o', 'bogus=1'],
  ['-t', 'bogus', '-B', 'b.qcow2', '-O', 'raw'],
  ['-t', 'bogus', '--target-is-zero'],
  ['-T', 'bogus', '--target-is-zero'],
  ['-t', 'bogus', '-n', '-o', 'cluster_size=4k'],
  ['-T', 'bogus', '-n', '-o', 'cluster_size=4k'],
  ['-t', 'bogus', '-O', 'qcow2', '-o', 'cluster_size=3'],
  ['-t', 'bogus', '--bitmaps', '-O', 'raw'],
  ['-t', 'bogus', '-n'],
  ['-t', 'bogus', '-c', '-O', 'raw'],
  ['-o', 'bogus=1', '--bitmaps', '-O', 'raw'],
  ['--bitmaps', '-O', 'raw', '-B', 'b.qcow2'],
  ['--bitmaps', '-O', 'bogus'],
  ['--bitmaps', '-c', '-O', 'raw'],
  ['-c', '-O', 'qcow2', '-o', 'preallocation=full', '-O', 'raw'],
  ['-c', '-C', '-o', 'help'],
  ['-o', 'help', '--target-is-zero'],
  ['--skip-broken-bitmaps', '-c', '-C'],
  ['--target-image-opts', '-o', 'x=y', '-n'],
  ['-t', 'off', '-O', 'qcow2'],
];

/** The backing format each creating driver checks first (qcow2 after its version): qemu's BlockdevDriver names. */
const CREATE: readonly (readonly string[])[] = [
  ...['qcow2', 'qed', 'qcow'].flatMap((f) => [
    ['-f', f, '-F', 'bogus', 'out', '1M'],
    ['-f', f, '-F', 'bogus', '-o', 'cluster_size=3', 'out', '1M'],
    ['-f', f, '-F', 'file', 'out', '1M'],
    ['-f', f, '-F', 'nbd', 'out', '1M'],
    ['-f', f, '-F', 'iser', 'out', '1M'],
    ['-f', f, '-F', 'bogus', '-u', '-b', 'b.qcow2', 'out', '1M'],
    ['-f', f, '-F', 'bogus', 'out', '0'],
  ]),
  ['-f', 'qcow2', '-F', 'bogus', '-o', 'compat=bogus', 'out', '1M'],
  ['-f', 'qcow2', '-F', 'bogus', '-o', 'preallocation=bogus', 'out', '1M'],
];

describe('which of two errors is reported, as qemu-img reports it', () => {
  it('convert and create: every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    const cases = [...CONVERT.map((a) => ['convert', ...a, 'b.qcow2', 'out']), ...CREATE.map((a) => ['create', '-q', ...a])];
    for (const args of cases) {
      const runs = [qemuImg, vdisk].map((tool) => {
        rmSync(join(cwd, 'out'), { force: true });
        qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '1M'], { cwd });
        return tool(args, { cwd });
      });
      const [theirs, ours] = runs as [{ stdout: string; stderr: string; status: number | null }, { stdout: string; stderr: string; status: number | null }];
      const what = args.join(' ');
      assert.equal(ours.stdout, theirs.stdout, what);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), what);
      assert.equal(ours.status, theirs.status, what);
    }
  });

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
