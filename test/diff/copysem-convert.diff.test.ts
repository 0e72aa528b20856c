/**
 * convert's copy semantics against qemu-img: a
 * target with a backing file (`-B`, `-o backing_file`) must read as the
 * source where the source reads as zeros; zeros past the end of a shorter
 * backing file, `-S` zero detection, multiple sources, `-n` into existing
 * images (with and without `--target-is-zero`) must allocate what qemu-img
 * allocates — table-driven over target formats and `-S` values.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { assertAllocation, assertSameContent, type Expect } from '../helpers/copysem.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-copysem-');
after(() => dir.cleanup());
const cwd = dir.path;

/** Inputs, all made by qemu-img/qemu-io. */
function fixtures(): void {
  const raw = (name: string, size: string, cmds: string[]): void => {
    qemuImgOk(['create', '-q', '-f', 'raw', name, size], { cwd });
    if (cmds.length) qemuIo(`${cwd}/${name}`, cmds, 'raw');
  };
  raw('z.raw', '4M', []); // reads as zeros, a hole but for its first block
  raw('mix.raw', '4M', ['write -P 9 64k 64k', 'write -P 0 1M 1M', 'write -P 3 3M 4k']);
  raw('b4.raw', '4M', ['write -P 7 0 4M']);
  raw('b1.raw', '1M', ['write -P 7 0 1M']);
  raw('a.raw', '1M', ['write -P 1 0 64k', 'write -P 0 128k 128k', 'write -P 2 512k 1k']);
  raw('odd.raw', '100k', ['write -P 6 10k 2k']);
  raw('sb.raw', '2M', ['write -P 2 0 2M']);
  raw('tiny.raw', '1k', ['write -P 8 0 1k']);
  raw('empty.raw', '0', []);
  qemuImgOk(['convert', '-O', 'vmdk', 'b4.raw', 'b4.vmdk'], { cwd });
  // A qcow2 without a backing file: unallocated, data, and zero clusters.
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'zq.qcow2', '4M'], { cwd });
  qemuIo(`${cwd}/zq.qcow2`, ['write -P 5 1M 64k', 'write -z 2M 128k'], 'qcow2');
  // An overlay over a shorter base: data, zero clusters, zeros as data, unallocated past the base's end.
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'sb.raw', '-F', 'raw', 'ov.qcow2', '4M'], { cwd });
  qemuIo(`${cwd}/ov.qcow2`, ['write -P 1 0 64k', 'write -z 1M 128k', 'write -P 0 1536k 64k', 'write -P 4 3M 64k', 'write -z 3200k 64k'], 'qcow2');
}

/** An existing target (`-n`): qemu-img create's options, and qemu-io commands run on it. */
interface Prep {
  readonly create: readonly string[];
  readonly io?: readonly string[];
}

interface Case {
  /** What the case shows. */
  readonly name: string;
  /** convert's arguments; `OUT` is the target. */
  readonly args: readonly string[];
  /** Target format (for map/check/compare). */
  readonly format: string;
  /** The existing target of a `-n` case. */
  readonly prep?: Prep;
  /** The target must read as this source (format, file). */
  readonly readsAs?: readonly [string, string];
  readonly expect: Expect;
}

const B4 = ['-B', 'b4.raw', '-F', 'raw'];
const B1 = ['-B', 'b1.raw', '-F', 'raw'];
const prefilled = (fmt: string, opts: string[] = []): Prep => ({ create: ['-f', fmt, ...opts], io: ['write -P 8 0 4M'] });
const fresh = (fmt: string, opts: string[] = []): Prep => ({ create: ['-f', fmt, ...opts] });

const cases: readonly Case[] = [
  // Zeros of the source hide the backing file's data.
  { name: '-o backing_file, all-zero raw source', args: ['-O', 'qcow2', '-o', 'backing_file=b4.raw,backing_fmt=raw', 'z.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'z.raw'], expect: 'same' },
  { name: '-o backing_file, -S 64k, mixed raw source', args: ['-S', '64k', '-O', 'qcow2', '-o', 'backing_file=b4.raw,backing_fmt=raw', 'mix.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'mix.raw'], expect: 'same' },
  { name: '-B, qcow2 source without a backing file', args: ['-O', 'qcow2', ...B4, 'zq.qcow2', 'OUT'], format: 'qcow2', readsAs: ['qcow2', 'zq.qcow2'], expect: 'same' },
  { name: '-B, compat=0.10 target (zeros as data)', args: ['-O', 'qcow2', '-o', 'compat=0.10', ...B4, 'zq.qcow2', 'OUT'], format: 'qcow2', readsAs: ['qcow2', 'zq.qcow2'], expect: 'same' },
  { name: '-B, extended L2 target, -S 0', args: ['-S', '0', '-O', 'qcow2', '-o', 'extended_l2=on', ...B4, 'zq.qcow2', 'OUT'], format: 'qcow2', readsAs: ['qcow2', 'zq.qcow2'], expect: 'same' },
  { name: '-B, vmdk target over a vmdk', args: ['-O', 'vmdk', '-B', 'b4.vmdk', '-F', 'vmdk', 'zq.qcow2', 'OUT'], format: 'vmdk', readsAs: ['qcow2', 'zq.qcow2'], expect: 'same' },
  { name: '-B -c (compressed clusters)', args: ['-c', '-O', 'qcow2', ...B4, 'mix.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'mix.raw'], expect: 'same' },
  { name: '-B naming the source\'s own base: only the top layer', args: ['-O', 'qcow2', '-B', 'sb.raw', '-F', 'raw', 'ov.qcow2', 'OUT'], format: 'qcow2', readsAs: ['qcow2', 'ov.qcow2'], expect: 'same' },
  { name: '-o backing_file with a source chain: only the top layer', args: ['-O', 'qcow2', '-o', 'backing_file=b4.raw,backing_fmt=raw', 'ov.qcow2', 'OUT'], format: 'qcow2', expect: 'same' },
  // Zeros past the end of a shorter backing file are left unallocated.
  { name: '-B past a shorter backing file', args: ['-O', 'qcow2', ...B1, 'z.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'z.raw'], expect: 'same' },
  { name: '-B past a shorter backing file, -S 0', args: ['-S', '0', '-O', 'qcow2', ...B1, 'mix.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'mix.raw'], expect: 'same' },
  { name: '-B past a shorter backing file, compat=0.10', args: ['-O', 'qcow2', '-o', 'compat=0.10', ...B1, 'mix.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'mix.raw'], expect: 'same' },
  { name: '-B past a shorter backing file, source chain', args: ['-O', 'qcow2', ...B1, 'ov.qcow2', 'OUT'], format: 'qcow2', expect: 'same' },
  { name: '-B, -S 64k, extended L2: short zero requests', args: ['-S', '64k', '-O', 'qcow2', '-o', 'extended_l2=on', ...B4, 'z.raw', 'OUT'], format: 'qcow2', readsAs: ['raw', 'z.raw'], expect: 'same' },
  // Multiple sources.
  { name: 'three sources, raw, -S 64k', args: ['-S', '64k', '-O', 'raw', 'odd.raw', 'a.raw', 'odd.raw', 'OUT'], format: 'raw', expect: 'same' },
  { name: 'three sources, 4k clusters, -S 64k', args: ['-S', '64k', '-O', 'qcow2', '-o', 'cluster_size=4096', 'odd.raw', 'a.raw', 'odd.raw', 'OUT'], format: 'qcow2', expect: 'same' },
  { name: 'three sources, vdi, -S 1k', args: ['-S', '1k', '-O', 'vdi', 'a.raw', 'odd.raw', 'zq.qcow2', 'OUT'], format: 'vdi', expect: 'same' },
  { name: 'three sources ending mid-cluster, -c', args: ['-c', '-O', 'qcow2', 'odd.raw', 'a.raw', 'odd.raw', 'OUT'], format: 'qcow2', expect: 'same' },
  { name: 'tiny and empty sources, -c, streamOptimized vmdk', args: ['-c', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'tiny.raw', 'empty.raw', 'tiny.raw', 'zq.qcow2', 'tiny.raw', 'OUT'], format: 'vmdk', expect: 'same' },
  // qcow2 leaves the unwritten part of a new cluster a hole in the file; qemu-img fills it.
  { name: 'three sources, qcow2', args: ['-O', 'qcow2', 'a.raw', 'mix.raw', 'zq.qcow2', 'OUT'], format: 'qcow2', expect: 'smaller' },
  // -n of an all-zero source, with and without --target-is-zero.
  { name: '-n, all-zero source into a full qcow2, -S 64k', args: ['-n', '-S', '64k', '-O', 'qcow2', 'z.raw', 'OUT'], format: 'qcow2', prep: prefilled('qcow2'), expect: 'same' },
  { name: '-n, all-zero source into a full compat=0.10 qcow2', args: ['-n', '-O', 'qcow2', 'z.raw', 'OUT'], format: 'qcow2', prep: prefilled('qcow2', ['-o', 'compat=0.10']), expect: 'same' },
  { name: '-n, all-zero source into an empty qcow2', args: ['-n', '-O', 'qcow2', 'z.raw', 'OUT'], format: 'qcow2', prep: fresh('qcow2'), expect: 'same' },
  { name: '-n, all-zero source into a full extended-L2 qcow2, -S 64k', args: ['-n', '-S', '64k', '-O', 'qcow2', 'z.raw', 'OUT'], format: 'qcow2', prep: prefilled('qcow2', ['-o', 'extended_l2=on']), expect: 'same' },
  { name: '-n --target-is-zero, -S 64k, vdi', args: ['-n', '--target-is-zero', '-S', '64k', '-O', 'vdi', 'z.raw', 'OUT'], format: 'vdi', prep: fresh('vdi'), expect: 'same' },
  { name: '-n --target-is-zero, -S 64k, raw', args: ['-n', '--target-is-zero', '-S', '64k', '-O', 'raw', 'mix.raw', 'OUT'], format: 'raw', prep: fresh('raw'), expect: 'same' },
  { name: '-n -B into an overlay of the same base', args: ['-n', '-O', 'qcow2', '-B', 'sb.raw', '-F', 'raw', 'ov.qcow2', 'OUT'], format: 'qcow2', prep: fresh('qcow2', ['-b', 'sb.raw', '-F', 'raw']), readsAs: ['qcow2', 'ov.qcow2'], expect: 'same' },
  { name: '-n into an overlay, no -B: zeros hide its backing file', args: ['-n', '-O', 'qcow2', 'mix.raw', 'OUT'], format: 'qcow2', prep: fresh('qcow2', ['-b', 'b4.raw', '-F', 'raw']), readsAs: ['raw', 'mix.raw'], expect: 'same' },
  // qemu-img writes zeros as data into vmdk grains that already read as zeros; vdisk leaves them unallocated.
  { name: '-n, zero data into an empty vmdk', args: ['-n', '-O', 'vmdk', 'mix.raw', 'OUT'], format: 'vmdk', prep: fresh('vmdk'), readsAs: ['raw', 'mix.raw'], expect: 'smaller' },
];

/** Makes the existing target `target` of a `-n` case. */
function makeTarget(prep: Prep, format: string, target: string): void {
  qemuImgOk(['create', '-q', ...prep.create, target, '4M'], { cwd });
  if (prep.io) qemuIo(`${cwd}/${target}`, prep.io, format);
}

describe('convert copies as qemu-img does (backing files, zeros, -S, -n, several sources)', () => {
  before(() => {
    if (hasQemu) fixtures();
  });

  cases.forEach((c, i) => {
    it(c.name, (t) => {
      if (!requireQemu(t)) return;
      const [q, v] = [`q${i}`, `v${i}`];
      if (c.prep) for (const target of [q, v]) makeTarget(c.prep, c.format, target);
      const theirs = qemuImg(['convert', ...c.args.map((a) => (a === 'OUT' ? q : a))], { cwd });
      const ours = vdisk(['convert', ...c.args.map((a) => (a === 'OUT' ? v : a))], { cwd });
      assert.equal(ours.stderr, asVdisk(theirs.stderr));
      assert.equal(ours.status, theirs.status);
      assertAllocation(q, v, c.format, c.expect, cwd);
      if (c.readsAs) assertSameContent(c.readsAs[1], v, c.readsAs[0], c.format, cwd);
    });
  });

  it('--target-is-zero with -B is refused (qemu-img 7.2 prints the same error but exits 0 without copying)', (t) => {
    if (!requireQemu(t)) return;
    for (const target of ['qtz', 'vtz']) qemuImgOk(['create', '-q', '-f', 'qcow2', target, '4M'], { cwd });
    const args = (target: string): string[] => ['convert', '-n', '--target-is-zero', '-O', 'qcow2', ...B4, 'mix.raw', target];
    const theirs = qemuImg(args('qtz'), { cwd });
    const ours = vdisk(args('vtz'), { cwd });
    assert.equal(ours.stderr, asVdisk(theirs.stderr));
    assert.equal(theirs.status, 0);
    assert.equal(ours.status, 1);
    assertAllocation('qtz', 'vtz', 'qcow2', 'same', cwd);
  });
});
