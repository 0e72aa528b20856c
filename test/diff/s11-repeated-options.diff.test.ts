/**
 * Options qemu-img reads inside its getopt loop are checked where they stand
 * on the command line: a bad value fails even when a good one follows
 * (`convert -m x -m 8`, `bench -c x -c 1`, `check -r bogus -r leaks`, …),
 * and of two bad ones the first is reported. vdisk used to check only the
 * last value of each. Options qemu reads after the loop (`-t`, `-T`, `-f`,
 * `--output` outside measure) still take the last value. Also the integer
 * syntax of qemu_strtol/qemu_strtoul (`-m ' 8'`, `+8`, `0x8` are 8; `08` and
 * `8 ` are refused; `bench -c -0` is 0) and `map --max-length` past 2^53.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s11-options-');
after(() => dir.cleanup());
const cwd = dir.path;

const CASES: readonly (readonly string[])[] = [
  ['bench', '-c', '1', '-o', 'x', '-o', '0', 'r.raw'],
  ['bench', '-c', 'x', '-c', '1', 'r.raw'],
  ['bench', '-c', '1', '-d', 'x', '-d', '1', 'r.raw'],
  ['bench', '-c', '1', '-s', 'x', '-s', '4k', 'r.raw'],
  ['bench', '-c', '1', '-s', '3G', '-s', '4k', 'r.raw'],
  ['bench', '-c', '1', '-S', 'x', '-S', '4k', 'r.raw'],
  ['bench', '-c', '1', '-t', 'bogus', '-t', 'none', 'r.raw'],
  ['bench', '-c', '1', '-t', 'none', '-t', 'bogus', '-f', 'raw', 'r.raw'],
  ['bench', '-c', '1', '-i', 'bogus', '-i', 'threads', 'r.raw'],
  ['bench', '-c', '1', '-w', '--pattern=x', '--pattern=1', 'r.raw'],
  ['bench', '-c', '1', '-w', '--flush-interval=x', '--flush-interval=1', 'r.raw'],
  ['bench', '-c', 'x', '-d', 'y', 'r.raw'],
  ['bench', '-d', 'y', '-c', 'x', 'r.raw'],
  ['bench', '-f', 'bogus', '-f', 'raw', '-c', '1', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '-0', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '1 ', 'r.raw'],
  ['bench', '-f', 'raw', '-c', ' 1', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '010', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '08', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '0x', 'r.raw'],
  ['bench', '-f', 'raw', '-c', '1', '-d', '-1', 'r.raw'],
  ['bitmap', '--add', '-g', 'x', '-g', '64k', 'b.qcow2', 'b0'],
  ['bitmap', '--add', '-g', '1x', 'b.qcow2', 'b0'],
  ['check', '-r', 'bogus', '-r', 'leaks', 'b.qcow2'],
  ['check', '-r', 'leaks', '-r', 'bogus', 'b.qcow2'],
  ['check', '-T', 'bogus', '-T', 'none', 'b.qcow2'],
  ['check', '--output=bogus', '--output=json', 'b.qcow2'],
  ['commit', '-r', 'x', '-r', '1', 't.qcow2'],
  ['commit', '-r', '-1', 't.qcow2'],
  ['commit', '-t', 'bogus', '-t', 'none', 't.qcow2'],
  ['convert', '-S', 'x', '-S', '4k', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-S', '513', '-S', '4k', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-c', '-S', 'x', '-O', 'qcow2', 'r.raw', 'out'],
  ['convert', '-C', '-S', '4k', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-r', 'x', '-r', '1M', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', 'x', '-m', '8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '0', '-m', '8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '08', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '0x8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '+8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', ' 8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '8 ', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '-8', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-m', '', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-l', 'snapshot.bogus=1', '-l', 'foo', '-O', 'raw', 'b.qcow2', 'out'],
  ['convert', '-l', 'foo', '-l', 'snapshot.bogus=1', '-O', 'raw', 'b.qcow2', 'out'],
  ['convert', '-t', 'bogus', '-t', 'none', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-T', 'bogus', '-T', 'none', '-O', 'raw', 'r.raw', 'out'],
  ['convert', '-O', 'bogus', '-O', 'raw', 'r.raw', 'out'],
  ['measure', '--size', 'x', '--size', '1G', '-O', 'qcow2'],
  ['measure', '--size', '1G', '--size', 'x', '-O', 'qcow2'],
  ['measure', '-l', 'snapshot.bogus=1', '-l', 'foo', '-O', 'qcow2', 'b.qcow2'],
  ['measure', '--output=bogus', '--output=json', '--size', '1G', '-O', 'qcow2'],
  ['measure', '--output=bogus', '--size', 'x', '-O', 'qcow2'],
  ['measure', '--size', 'x', '--output=bogus', '-O', 'qcow2'],
  ['map', '--max-length=x', '--start-offset=y', 'r.raw'],
  ['map', '--max-length=x', '--max-length=1', 'r.raw'],
  ['map', '--start-offset=x', '--start-offset=0', 'r.raw'],
  ['map', '--output=bogus', '--output=json', 'r.raw'],
  ['info', '--output=bogus', '--output=json', 'r.raw'],
  ['resize', '--preallocation=bogus', '--preallocation=off', '-f', 'raw', 'r.raw', '2M'],
  ['resize', '--preallocation=off', '--preallocation=bogus', '-f', 'raw', 'r.raw', '2M'],
  ['resize', '-f', 'bogus', '-f', 'raw', 'r.raw', '2M'],
  ['amend', '-t', 'bogus', '-t', 'none', '-o', 'lazy_refcounts=on', 'b.qcow2'],
  ['rebase', '-t', 'bogus', '-t', 'none', '-u', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'],
  ['dd', 'bs=x', 'bs=512', 'if=r.raw', 'of=out'],
  ['dd', 'bs=512', 'bs=x', 'if=r.raw', 'of=out'],
  ['compare', '-T', 'bogus', '-T', 'none', 'r.raw', 'r.raw'],
];

function fresh(): void {
  rmSync(join(cwd, 'out'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'], { cwd });
}

const timing = (text: string): string => text.replace(/Run completed in [0-9.]+ seconds/, 'Run completed in T seconds');

describe('options checked where they stand, as qemu-img checks them', () => {
  it('every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(CASES, { cwd, fresh, stdout: timing });
  });
});
