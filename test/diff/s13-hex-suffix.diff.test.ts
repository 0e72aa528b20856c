/**
 * Sizes written in hex with a multiplier suffix (`0x1M`): qemu-img 7.2 still
 * takes them, with a deprecation warning each time it reads one (hex digits
 * take `b` and `E` themselves). vdisk refused them as bad syntax. The
 * warning is counted as qemu counts it: once per option read by getopt, and
 * twice for `-o` sizes of the formats whose create reads its options again
 * through QAPI. Also a value with a trailing blank in the Formatting line,
 * which vdisk trimmed.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-hex-suffix-');
after(() => dir.cleanup());
const cwd = dir.path;

const CASES: readonly (readonly string[])[] = [
  ['create', '-f', 'raw', 'OUT', '0x1M'],
  ['create', '-f', 'raw', 'OUT', '0X1k'],
  ['create', '-f', 'raw', 'OUT', '0x1e'],
  ['create', '-f', 'raw', 'OUT', '0x1b'],
  ['create', '-f', 'raw', 'OUT', '0x1k5'],
  ['create', '-f', 'raw', 'OUT', '0x1.5k'],
  ['create', '-f', 'raw', 'OUT', '0xk'],
  ['create', '-f', 'raw', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'file', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'vmdk', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'qcow2', '-o', 'size=0x1M', 'OUT'],
  ['create', '-f', 'qcow2', '-o', 'cluster_size=0x1k', 'OUT', '1M'],
  ['create', '-f', 'qcow2', '-o', 'size=0x1M,cluster_size=0x1k', 'OUT'],
  ['create', '-f', 'qcow2', '-o', 'size=0x2M,compat=0.10,lazy_refcounts=on', 'OUT'],
  ['create', '-f', 'qed', '-o', 'cluster_size=0x4k', 'OUT', '0x2M'],
  ['create', '-f', 'vhdx', '-o', 'block_size=0x1M,log_size=0x1M', 'OUT', '0x2M'],
  ['create', '-f', 'vpc', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'vdi', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'parallels', '-o', 'cluster_size=0x4k', 'OUT', '1M'],
  ['create', '-f', 'qcow', '-o', 'size=0x2M', 'OUT'],
  ['create', '-f', 'luks', '--object', 'secret,id=s,data=x', '-o', 'key-secret=s,iter-time=10', '-o', 'size=0x2M', 'OUT'],
  ['resize', '-f', 'raw', 'r.raw', '0x2M'],
  ['resize', '-f', 'raw', 'r.raw', '+0x1M'],
  ['map', '-s', '0x1k', '-l', '0x1k', 'r.raw'],
  ['map', '--output=json', '-s', '0x1k', 'r.raw'],
  ['measure', '--size', '0x1M', '-O', 'qcow2'],
  ['measure', '-O', 'qcow2', '-o', 'cluster_size=0x1k', 'r.raw'],
  ['convert', '-S', '0x1k', '-O', 'raw', 'r.raw', 'OUT'],
  ['convert', '-r', '0x1M', '-O', 'raw', 'r.raw', 'OUT'],
  ['convert', '-O', 'qcow2', '-o', 'cluster_size=0x1k', 'r.raw', 'OUT'],
  ['dd', 'bs=0x1k', 'count=0x1k', 'if=r.raw', 'of=OUT'],
  ['bitmap', '--add', '-g', '0x1k', 'q.qcow2', 'b1'],
  ['amend', '-o', 'size=0x2M', 'q.qcow2'],
  ['commit', '-r', '0x1M', 'q.qcow2'],
  ['info', '--image-opts', 'driver=qcow2,file.filename=q.qcow2,cache-size=0x1M'],
  ['check', '--image-opts', 'driver=qcow2,file.filename=q.qcow2,cache-size=0x1M,l2-cache-size=0x1k'],
  ['info', '--image-opts', 'driver=raw,file.filename=r.raw,offset=0x1k,size=0x1k'],
  // A value ending in a blank keeps it in the Formatting line.
  ['create', '-f', 'vmdk', '-o', 'toolsversion= ', 'OUT', '1M'],
];

function fresh(): void {
  rmSync(join(cwd, 'OUT'), { force: true });
  qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
}

/**
 * The new file's info and length, and the inputs' info: without a vmdk's random CID, LUKS's random UUID and
 * timed iterations, nor the allocation
 * (qemu writes a vhdx's whole 1 MiB BAT region, vdisk only the entries).
 */
function outcome(): string {
  const out = existsSync(join(cwd, 'OUT')) ? `${qemuImgOk(['info', '-U', 'OUT'], { cwd })} length ${statSync(join(cwd, 'OUT')).size}` : 'no OUT';
  return `${out}\n${qemuImgOk(['info', '-U', 'r.raw'], { cwd })}\n${qemuImgOk(['info', '-U', 'q.qcow2'], { cwd })}`.replace(/cid: \d+/g, 'cid: N').replace(/disk size: .*/g, 'disk size: N')
    .replace(/(uuid|iters): .*/g, '$1: N');
}

describe('hex sizes with a multiplier suffix, taken with qemu-img 7.2\'s deprecation warning', () => {
  it('every case prints, exits and leaves files as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(CASES, { cwd, fresh, outcome });
  });
});
