/**
 * Writing QED as qemu does: `create` lays down the same bytes
 * with every option and refuses what qemu refuses with its messages;
 * `convert -O qed` writes the same file qemu-img writes; guest writes
 * (copy-on-write from a backing file, zero writes aligned or not, writes
 * into zero clusters) leave the same file qemu-io leaves, in crash-safe
 * order with the need-check flag set only while clusters are allocated
 * without a backing file; resize grows only, rebase -u rewrites the
 * header as qemu does, and amend and measure are refused as qemu-img
 * refuses them for qed.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qed-write-');
after(() => dir.cleanup());
const cwd = dir.path;
const p = (name: string): string => `${cwd}/${name}`;

function same(args: readonly string[]): void {
  const ours = vdisk(args, { cwd });
  const theirs = qemuImg(args, { cwd });
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${args.join(' ')}`);
  assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), `stderr of ${args.join(' ')}`);
  assert.equal(ours.status, theirs.status, `exit status of ${args.join(' ')}`);
}

/**
 * Runs `args` (with `{}` standing for the image) on a file each for vdisk
 * and qemu-img (copies of `src` when given), then compares the outputs and
 * the files.
 */
function sameOnCopies(src: string | undefined, args: readonly string[], tag: string): void {
  const [v, q] = [`${tag}.v.qed`, `${tag}.q.qed`];
  if (src !== undefined) {
    copyFileSync(p(src), p(v));
    copyFileSync(p(src), p(q));
  }
  const ours = vdisk(args.map((a) => (a === '{}' ? v : a)), { cwd });
  const theirs = qemuImg(args.map((a) => (a === '{}' ? q : a)), { cwd });
  assert.equal(ours.stdout.replaceAll(v, q), theirs.stdout, `stdout of ${args.join(' ')}`);
  assert.equal(ours.stderr.replaceAll(v, q), theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), `stderr of ${args.join(' ')}`);
  assert.equal(ours.status, theirs.status, `exit status of ${args.join(' ')}`);
  assert.ok(readFileSync(p(v)).equals(readFileSync(p(q))), `file after ${args.join(' ')}`);
}

const features = (name: string): bigint => readFileSync(p(name)).readBigUInt64LE(16);

describe('qed create, convert and writes equal qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'raw', 'src.raw', '6M'], { cwd });
    qemuIo(p('src.raw'), ['write -P 0x11 0 100k', 'write -P 0x22 1M 64k', 'write -P 0x33 3000k 5k', 'write -P 0x44 5M 1M'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'raw', 'base.raw', '6M'], { cwd });
    qemuIo(p('base.raw'), ['write -P 0xbb 0 6M'], 'raw');
  });

  const createOpts: readonly (readonly string[])[] = [
    [],
    ['-o', 'cluster_size=4k,table_size=2'],
    ['-o', 'cluster_size=2M,table_size=8'],
    ['-o', 'table_size=16'],
    ['-b', 'base.raw', '-F', 'raw'],
    ['-b', 'src.raw', '-F', 'raw', '-o', 'cluster_size=8k'],
  ];
  for (const [i, opts] of createOpts.entries()) {
    it(`create ${opts.join(' ') || '(defaults)'} writes qemu-img's bytes`, (t) => {
      if (!requireQemu(t)) return;
      sameOnCopies(undefined, ['create', '-f', 'qed', ...opts, '{}', '5000k'], `c${i}`);
    });
  }

  it('create refuses what qemu-img refuses, with its messages', (t) => {
    if (!requireQemu(t)) return;
    for (const o of ['cluster_size=2k', 'cluster_size=3000', 'cluster_size=128M', 'table_size=0', 'table_size=3', 'table_size=32', 'cluster_size=4k,table_size=1']) {
      const r = vdisk(['create', '-f', 'qed', '-o', o, 'bad.qed', '2T'], { cwd });
      const q = qemuImg(['create', '-f', 'qed', '-o', o, 'bad.q.qed', '2T'], { cwd });
      assert.equal(r.stderr, q.stderr.replaceAll('qemu-img: ', 'vdisk: ').replaceAll('bad.q.qed', 'bad.qed'), o);
      assert.equal(r.stdout, q.stdout.replaceAll('bad.q.qed', 'bad.qed'), o);
      assert.equal(r.status, q.status, o);
    }
    same(['create', '-f', 'qed', '-o', 'help']);
  });

  for (const opts of [[], ['-o', 'cluster_size=4k,table_size=2']]) {
    it(`convert -O qed ${opts.join(' ')} writes qemu-img's file`, (t) => {
      if (!requireQemu(t)) return;
      const tag = opts.length ? 'small' : 'default';
      assert.equal(vdisk(['convert', '-O', 'qed', ...opts, 'src.raw', `${tag}.v.qed`], { cwd }).status, 0);
      qemuImgOk(['convert', '-O', 'qed', ...opts, 'src.raw', `${tag}.q.qed`], { cwd });
      assert.ok(readFileSync(p(`${tag}.v.qed`)).equals(readFileSync(p(`${tag}.q.qed`))));
      qemuImgOk(['check', `${tag}.v.qed`], { cwd });
      qemuImgOk(['compare', 'src.raw', `${tag}.v.qed`], { cwd });
    });
  }

  it('convert -B onto a raw backing file: qemu-img check and compare pass, map equal', (t) => {
    if (!requireQemu(t)) return;
    for (const tool of ['v', 'q'] as const) {
      const args = ['convert', '-O', 'qed', '-B', 'base.raw', '-F', 'raw', 'src.raw', `b.${tool}.qed`];
      const r = tool === 'v' ? vdisk(args, { cwd }) : qemuImg(args, { cwd });
      assert.equal(r.status, 0, r.stderr);
    }
    qemuImgOk(['check', 'b.v.qed'], { cwd });
    qemuImgOk(['compare', 'src.raw', 'b.v.qed'], { cwd });
    assert.equal(qemuImgOk(['map', '--output=json', 'b.v.qed'], { cwd }), qemuImgOk(['map', '--output=json', 'b.q.qed'], { cwd }));
  });

  /** Guest writes as qemu-io commands and the same through the SDK. */
  const OPS: readonly (readonly [string, (d: BlockDevice) => Promise<void>])[] = [
    ['write -P 0x61 70000 3000', (d) => d.write(70000, new Uint8Array(3000).fill(0x61))],
    ['write -P 0x62 1000k 200k', (d) => d.write(1000 * 1024, new Uint8Array(200 * 1024).fill(0x62))],
    ['write -z 2M 128k', (d) => d.writeZeroes(2 * 1024 * 1024, 128 * 1024)],
    ['write -z 3000k 100k', (d) => d.writeZeroes(3000 * 1024, 100 * 1024)],
    ['write -P 0x63 2200k 1k', (d) => d.write(2200 * 1024, new Uint8Array(1024).fill(0x63))],
    ['write -z 0 64k', (d) => d.writeZeroes(0, 65536)],
    ['write -P 0x64 5000k 1100k', (d) => d.write(5000 * 1024, new Uint8Array(1100 * 1024).fill(0x64))],
  ];

  for (const backing of [false, true]) {
    it(`guest writes ${backing ? 'over a raw backing file (copy-on-write)' : 'without a backing file'} leave qemu-io's file`, async (t) => {
      if (!requireQemu(t)) return;
      const name = backing ? 'w-back' : 'w-plain';
      const opts = backing ? ['-b', 'base.raw', '-F', 'raw'] : [];
      qemuImgOk(['create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', ...opts, `${name}.q.qed`, '6M'], { cwd });
      copyFileSync(p(`${name}.q.qed`), p(`${name}.v.qed`));
      qemuIo(p(`${name}.q.qed`), OPS.map(([c]) => c), 'qed');
      const dev = await BlockDevice.open(p(`${name}.v.qed`), { format: 'qed', readOnly: false });
      try {
        await OPS[0]![1](dev);
        // between allocating writes and the flush that ends them, the flag says "needs check" only without a backing file
        assert.equal(features(`${name}.v.qed`) & 2n, backing ? 0n : 2n);
        for (const [, op] of OPS.slice(1)) await op(dev);
      } finally {
        await dev.close();
      }
      assert.equal(features(`${name}.v.qed`) & 2n, 0n);
      assert.ok(readFileSync(p(`${name}.v.qed`)).equals(readFileSync(p(`${name}.q.qed`))));
    });
  }

  it('a partial write into a zero cluster keeps the rest of it zero over a backing file (deliberate: qemu copies the backing data in)', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', '-b', 'base.raw', '-F', 'raw', 'zc.qed', '6M'], { cwd });
    const dev = await BlockDevice.open(p('zc.qed'), { format: 'qed', readOnly: false });
    try {
      await dev.writeZeroes(2 * 1024 * 1024, 128 * 1024);
      await dev.write(2100 * 1024, new Uint8Array(1024).fill(0x63));
    } finally {
      await dev.close();
    }
    qemuImgOk(['check', 'zc.qed'], { cwd });
    const r = qemuImg(['convert', '-O', 'raw', 'zc.qed', 'zc.raw'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    const bytes = readFileSync(p('zc.raw')).subarray(2096 * 1024, 2112 * 1024);
    const expected = Buffer.alloc(16 * 1024);
    expected.fill(0x63, 4 * 1024, 5 * 1024);
    assert.ok(bytes.equals(expected), 'the cluster reads as zeros around the written bytes');
  });

  it('resize grows only, with qemu-img messages', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qed', 'r.qed', '4M'], { cwd });
    sameOnCopies('r.qed', ['resize', '{}', '6M'], 'r1');
    sameOnCopies('r.qed', ['resize', '{}', '1M'], 'r2');
    sameOnCopies('r.qed', ['resize', '--shrink', '{}', '1M'], 'r3');
    sameOnCopies('r.qed', ['resize', '{}', '+1000'], 'r4');
    sameOnCopies('r.qed', ['resize', '--preallocation=falloc', '{}', '8M'], 'r5');
    sameOnCopies('r.qed', ['resize', '-f', 'qed', '{}', '1P'], 'r6');
  });

  it('rebase -u rewrites the header as qemu-img does; amend and measure are refused', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qed', '-b', 'src.raw', '-F', 'raw', 'rb.qed', '6M'], { cwd });
    sameOnCopies('rb.qed', ['rebase', '-u', '-b', 'base.raw', '-F', 'raw', '{}'], 'rb1');
    sameOnCopies('rb.qed', ['rebase', '-u', '-b', 'base.raw', '-F', 'qcow2', '{}'], 'rb2');
    sameOnCopies('rb.qed', ['rebase', '-u', '-b', '', '{}'], 'rb3');
    // a name that does not fit the header cluster (4 KiB here)
    qemuImgOk(['create', '-q', '-f', 'qed', '-o', 'cluster_size=4k', 'rb4k.qed', '6M'], { cwd });
    sameOnCopies('rb4k.qed', ['rebase', '-u', '-b', `${'d/'.repeat(2100)}base.raw`, '-F', 'raw', '{}'], 'rb4');
    sameOnCopies('rb.qed', ['amend', '-o', 'backing_file=x', '{}'], 'am');
    same(['measure', '-O', 'qed', '--size', '1G']);
    same(['amend', '-f', 'qed', '-o', 'help']);
  });

  it('commit into a qed base and of a qed top: same files as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    for (const tool of ['v', 'q'] as const) {
      qemuImgOk(['create', '-q', '-f', 'qed', `cb.${tool}.qed`, '6M'], { cwd });
      qemuIo(p(`cb.${tool}.qed`), ['write -P 0x71 0 6M'], 'qed');
      qemuImgOk(['create', '-q', '-f', 'qed', '-b', `cb.${tool}.qed`, '-F', 'qed', `ct.${tool}.qed`, '6M'], { cwd });
      qemuIo(p(`ct.${tool}.qed`), ['write -P 0x72 100k 3k', 'write -z 1M 64k', 'write -P 0x73 4M 1M'], 'qed');
      const r = (tool === 'v' ? vdisk : qemuImg)(['commit', `ct.${tool}.qed`], { cwd });
      assert.equal(r.status, 0, r.stderr);
    }
    assert.ok(readFileSync(p('cb.v.qed')).equals(readFileSync(p('cb.q.qed'))), 'base after commit');
    // qed has no make_empty: the top stays as it was (its header names its own base)
    const mapOf = (tool: string): string => qemuImgOk(['map', '--output=json', `ct.${tool}.qed`], { cwd }).replaceAll(`cb.${tool}.qed`, 'cb.qed');
    assert.equal(mapOf('v'), mapOf('q'), 'top after commit');
  });
});
