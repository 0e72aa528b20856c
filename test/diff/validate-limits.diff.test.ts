/**
 * Header-field limits at least qemu-img 7.2's: images
 * qemu-img makes or opens that vdisk used to refuse — a 1 PiB vmdk (qemu's
 * L1 limit is 32 Mi grain tables), a vmdk of more than 1024 extents, VDI and
 * VHDX block tables above 64 MiB, a VHD BAT above 16 Mi entries. Each opens
 * in vdisk as in qemu-img (info, map, check) and vdisk creates them so that
 * qemu-img reads and writes them.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-validate-limits-');
after(() => dir.cleanup());
const cwd = dir.path;
const T = 2 ** 40;

function same(args: readonly string[]): void {
  const ours = vdisk(args, { cwd });
  const theirs = qemuImg(args, { cwd });
  assert.equal(ours.stdout, theirs.stdout, args.join(' '));
  assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), args.join(' '));
  assert.equal(ours.status, theirs.status, args.join(' '));
}

function maskedInfo(name: string): unknown {
  const info = JSON.parse(qemuImgOk(['info', '--output=json', name], { cwd })) as Record<string, unknown>;
  const text = JSON.stringify({ ...info, 'actual-size': 0, filename: 'x' });
  return JSON.parse(text.replace(/"(cid|parent-cid)":\d+/g, '"$1":0').replaceAll(`"${name}"`, '"x"'));
}

describe('limits at least qemu-img 7.2', { concurrency: 1 }, () => {
  it('vmdk: a 1 PiB monolithicSparse image (32 Mi grain tables, qemu L1 limit) that qemu-img reads and writes', (t) => {
    if (!requireQemu(t)) return;
    const r = vdisk(['create', '-f', 'vmdk', 'p.vmdk', '1P'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    qemuImgOk(['create', '-q', '-f', 'vmdk', 'q.vmdk', '1P'], { cwd });
    assert.deepEqual(maskedInfo('p.vmdk'), maskedInfo('q.vmdk'));
    // qemu-img's own 1 PiB image overflows its grain count and refuses writes; vdisk's takes them.
    qemuIo(`${cwd}/p.vmdk`, ['write -P 7 1T 64k', 'read -P 7 1T 64k', 'read -P 0 1023T 64k'], 'vmdk');
    const ours = vdisk(['map', '--output=json', '--start-offset=1T', '--max-length=1M', 'p.vmdk'], { cwd });
    const theirs = qemuImg(['map', '--output=json', '--start-offset=1T', '--max-length=1M', 'p.vmdk'], { cwd });
    assert.equal(ours.stdout, theirs.stdout);
    // Past qemu's L1 limit neither tool can open the result: vdisk refuses to make it.
    const big = vdisk(['create', '-f', 'vmdk', 'b.vmdk', '2P'], { cwd });
    assert.equal(big.status, 1);
    assert.match(big.stderr, /^vdisk: b\.vmdk: VMDK extent of 2251799813685248 bytes needs more than 33554432 grain tables/);
  });

  it('map --max-length: any length up to 2^63 - 1 bounds the walk (not refused at 2^53 as sizes are)', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'len.qcow2', '20M'], { cwd });
    qemuIo(`${cwd}/len.qcow2`, ['write -P 1 1M 64k', 'write -z 5M 1M'], 'qcow2');
    for (const length of ['8P', '9007199254740992', '9007199254740993', '2E', '8E-1', '9223372036854775807', '9223372036854775808', '8E', '16E', '-1', '1x']) {
      same(['map', '--output=json', `--max-length=${length}`, 'len.qcow2']);
      same(['map', '--start-offset=1M', `--max-length=${length}`, 'len.qcow2']);
    }
  });

  it('vmdk: more than 1024 extents (a 3 TiB twoGbMaxExtentFlat image)', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', 'e.vmdk', '3T'], { cwd });
    qemuIo(`${cwd}/e.vmdk`, ['write -P 3 2T 1M'], 'vmdk');
    same(['info', '--output=json', 'e.vmdk']);
    same(['map', '--output=json', '--start-offset=2047G', '--max-length=2G', 'e.vmdk']);
  });

  it('vdi: a block map above 64 MiB (17 TiB at 1 MiB blocks) opens, checks, maps and takes writes', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vdi', 'q.vdi', '17T'], { cwd });
    qemuIo(`${cwd}/q.vdi`, ['write -P 5 16T 1M', 'write -P 6 1M 64k'], 'vdi');
    same(['info', '--output=json', 'q.vdi']);
    same(['check', 'q.vdi']);
    same(['map', '--output=json', '--start-offset=16T', '--max-length=1G', 'q.vdi']);
    assert.equal(vdisk(['create', '-q', '-f', 'vdi', 'v.vdi', '17T'], { cwd }).status, 0);
    const dev = await BlockDevice.open(`${cwd}/v.vdi`, { format: 'vdi', readOnly: false });
    await dev.write(16 * T + 512 * 1024, new Uint8Array(64 * 1024).fill(9));
    await dev.close();
    qemuIo(`${cwd}/v.vdi`, ['read -P 9 16T+512k 64k', 'read -P 0 16T 512k'].map((c) => c.replace('16T+512k', String(16 * T + 512 * 1024))), 'vdi');
    assert.match(qemuImgOk(['check', 'v.vdi'], { cwd }), /No errors were found/);
  });

  it('vhdx: a BAT above 64 MiB (9 TiB at 1 MiB blocks) opens, checks and maps', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', 'b.vhdx', '9T'], { cwd });
    qemuIo(`${cwd}/b.vhdx`, ['write -P 4 8T 64k'], 'vhdx');
    same(['info', '--output=json', 'b.vhdx']);
    same(['check', 'b.vhdx']);
    same(['map', '--output=json', 'b.vhdx']);
    const ours = vdisk(['dd', 'if=b.vhdx', 'of=out.raw', 'bs=64k', `skip=${(8 * T) / 65536}`, 'count=1'], { cwd });
    assert.equal(ours.status, 0, ours.stderr);
    assert.ok(readFileSync(`${cwd}/out.raw`).every((b) => b === 4));
  });

  it('vpc: a BAT above 16 Mi entries (qemu allows INT_MAX / 4)', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vpc', 'h.vpc', '20M'], { cwd });
    writeFileSync(`${cwd}/h.vpc`, withBatEntries(readFileSync(`${cwd}/h.vpc`), 16 * 1024 * 1024 + 1));
    qemuIo(`${cwd}/h.vpc`, ['write -P 8 3M 64k'], 'vpc');
    same(['info', '--output=json', 'h.vpc']);
    same(['map', '--output=json', 'h.vpc']);
  });
});

/**
 * An empty dynamic VHD as qemu-img makes it (footer copy, dynamic header at
 * 512, BAT at 1536, footer) with its BAT grown to `entries` (all free).
 */
function withBatEntries(image: Buffer, entries: number): Buffer {
  const footer = image.subarray(0, 512);
  const header = Buffer.from(image.subarray(512, 1536));
  header.writeUInt32BE(entries, 28);
  header.writeUInt32BE(0, 36);
  let sum = 0;
  for (const b of header) sum += b;
  header.writeUInt32BE(~sum >>> 0, 36);
  const bat = Buffer.alloc(Math.ceil((entries * 4) / 512) * 512, 0xff);
  return Buffer.concat([footer, header, bat, footer]);
}
