/**
 * map and compare against qemu-img on 3-layer chains written with qemu-io
 * (pattern writes, zero writes, discards at scattered offsets).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const K = 1024;
const M = 1024 * K;

/** Builds base ← mid ← top (qcow2 over a qcow2 or raw base) with scattered writes. */
function chain(prefix: string, baseFormat: string, seed: number, cluster = 65536): void {
  qemuImgOk(['create', '-q', '-f', baseFormat, ...(baseFormat === 'qcow2' ? ['-o', `cluster_size=${cluster}`] : []), `${prefix}-base`, '32M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, '-b', `${prefix}-base`, '-F', baseFormat, `${prefix}-mid`], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, '-b', `${prefix}-mid`, '-F', 'qcow2', `${prefix}-top`], { cwd });
  const next = rng(seed);
  for (const [layer, fmt] of [[`${prefix}-base`, baseFormat], [`${prefix}-mid`, 'qcow2'], [`${prefix}-top`, 'qcow2']] as const) {
    const cmds: string[] = [];
    for (let i = 0; i < 12; i++) {
      const off = Math.floor(next() * 30 * M / (4 * K)) * 4 * K;
      const len = (1 + Math.floor(next() * 64)) * 4 * K;
      const r = next();
      if (r < 0.6) cmds.push(`write -P ${1 + Math.floor(next() * 250)} ${off} ${len}`);
      else if (r < 0.8) cmds.push(`write -z ${off} ${len}`);
      else if (fmt === 'qcow2') cmds.push(`discard ${off} ${len}`);
    }
    qemuIo(`${cwd}/${layer}`, cmds, fmt);
  }
}

describe('map and compare on 3-layer chains equal qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    chain('q', 'qcow2', 1);
    chain('r', 'raw', 2);
    chain('s', 'qcow2', 3, 4096);
  });

  for (const prefix of ['q', 'r', 's']) {
    it(`map --output=json and human of chain ${prefix}`, (t) => {
      if (!requireQemu(t)) return;
      for (const file of [`${prefix}-top`, `${prefix}-mid`, `${prefix}-base`]) {
        for (const args of [['map', '--output=json'], ['map'], ['map', '--output=json', '--start-offset=1M', '--max-length=7M']]) {
          const ours = vdisk([...args, file], { cwd });
          const theirs = qemuImg([...args, file], { cwd });
          assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img:', 'vdisk:'), `${args.join(' ')} ${file}`);
          assert.equal(ours.stdout, theirs.stdout, `${args.join(' ')} ${file}`);
          assert.equal(ours.status, theirs.status);
        }
      }
    });
  }

  it('compare: identical, different, strict and size-mismatch pairs', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-O', 'raw', 'q-top', 'q-top.raw'], { cwd });
    qemuImgOk(['convert', '-O', 'qcow2', 'q-top', 'q-flat.qcow2'], { cwd });
    qemuImgOk(['convert', '-O', 'raw', 'q-top', 'q-big.raw'], { cwd });
    qemuImgOk(['resize', '-f', 'raw', 'q-big.raw', '40M'], { cwd });
    qemuImgOk(['convert', '-O', 'raw', 'q-top', 'q-bigdirty.raw'], { cwd });
    qemuImgOk(['resize', '-f', 'raw', 'q-bigdirty.raw', '40M'], { cwd });
    qemuIo(`${cwd}/q-bigdirty.raw`, ['write -P 7 35M 4k'], 'raw');
    qemuImgOk(['convert', '-O', 'raw', 'q-top', 'q-diff.raw'], { cwd });
    qemuIo(`${cwd}/q-diff.raw`, ['write -P 9 5001216 512'], 'raw');
    const pairs: string[][] = [
      ['q-top', 'q-top.raw'], ['q-top', 'q-flat.qcow2'], ['q-top', 'q-mid'], ['q-top', 'r-top'], ['q-top', 'q-diff.raw'],
      ['q-top', 'q-big.raw'], ['q-top', 'q-bigdirty.raw'], ['-s', 'q-top', 'q-big.raw'], ['-s', 'q-top', 'q-flat.qcow2'],
      ['-s', 'q-top', 'q-top'], ['-f', 'qcow2', '-F', 'raw', 'q-top', 'q-top.raw'], ['-q', 'q-top', 'q-diff.raw'],
      ['q-top', 'missing'], ['missing', 'q-top'],
    ];
    for (const pair of pairs) {
      const ours = vdisk(['compare', ...pair], { cwd });
      const theirs = qemuImg(['compare', ...pair], { cwd });
      assert.equal(ours.stdout, theirs.stdout, pair.join(' '));
      assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img:', 'vdisk:'), pair.join(' '));
      assert.equal(ours.status, theirs.status, pair.join(' '));
    }
  });
});

/**
 * Extended L2 (subclusters): an allocated cluster's unwritten subclusters
 * keep their host offset in qemu's block status (QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC
 * sets BDRV_BLOCK_OFFSET_VALID), which map prints and compare -s compares,
 * whether they read as zeros, through a backing file, or past its end.
 */
describe('map and compare on extended-L2 images equal qemu-img', () => {
  const ext = ['-o', 'extended_l2=on,cluster_size=64k'];
  before(() => {
    if (!hasQemu) return;
    const img = (name: string, size: string, opts: string[], cmds: string[], backing?: string): void => {
      qemuImgOk(['create', '-q', '-f', 'qcow2', ...opts, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), name, size], { cwd });
      if (cmds.length > 0) qemuIo(`${cwd}/${name}`, cmds, 'qcow2');
    };
    // Partial clusters, a zero subcluster inside an allocated cluster and one in an empty cluster, a discarded subcluster.
    img('x-solo', '4M', ext, ['write -P 1 4k 4k', 'write -z 12k 2k', 'write -P 2 1M 100k', 'write -z 2M 2k', 'discard 1M 2k']);
    // A chain with shorter lower layers: subclusters over backing data, over backing holes and past a backing file's end.
    img('x-base', '3M', [], ['write -P 9 0 1M', 'write -P 8 2M 64k']);
    img('x-mid', '6M', ['-o', 'extended_l2=on'], ['write -P 1 68k 4k', 'write -z 136k 2k', 'write -P 2 2050k 6k', 'write -P 3 4M 2k', 'write -z 4200k 8k'], 'x-base');
    img('x-top', '8M', ['-o', 'extended_l2=on'], ['write -P 4 8k 2k', 'write -P 5 4100k 4k', 'write -P 6 7M 10k', 'write -z 7M 2k', 'write -z 6500k 4k'], 'x-mid');
    img('x-data', '2M', ['-o', `extended_l2=on,cluster_size=64k,data_file=${cwd}/x-data.raw`], ['write -P 1 4k 4k', 'write -z 12k 2k', 'write -P 2 1M 100k']);
    // Strict compare: equal up to a run that only the extended image gives a host offset.
    img('x-part', '4M', ext, ['write -P 1 0 64k', 'write -P 2 64k 2k']);
    img('x-small', '4M', ['-o', 'cluster_size=2k'], ['write -P 1 0 64k', 'write -P 2 64k 2k']);
    img('x-shortbase', '3M', [], []);
    img('x-over', '4M', [], [], 'x-shortbase');
    img('x-empty', '4M', [], []);
    // Random subcluster-sized writes, zero writes and discards on a 3-layer extended chain.
    const next = rng(7);
    for (const [name, size, backing] of [['x-r0', 24, undefined], ['x-r1', 28, 'x-r0'], ['x-r2', 32, 'x-r1']] as const) {
      const cmds: string[] = [];
      for (let i = 0; i < 24; i++) {
        const off = Math.floor(next() * 30 * M / (2 * K)) * 2 * K;
        const len = (1 + Math.floor(next() * 40)) * 2 * K;
        const r = next();
        const cmd = r < 0.6 ? `write -P ${1 + Math.floor(next() * 250)} ${off} ${len}` : r < 0.85 ? `write -z ${off} ${len}` : `discard ${off} ${len}`;
        if (off + len <= size * M) cmds.push(cmd);
      }
      img(name, `${size}M`, ext, cmds, backing);
    }
  });

  it('map --output=json and human', (t) => {
    if (!requireQemu(t)) return;
    for (const file of ['x-solo', 'x-top', 'x-mid', 'x-over', 'x-r2', 'x-r1', 'x-r0', 'x-data']) {
      // The window starts past the end of the 4M images: qemu then prints one empty entry.
      for (const args of [['--output=json'], [], ['--output=json', '--start-offset=4098k', '--max-length=3M']]) {
        const ours = vdisk(['map', ...args, file], { cwd });
        const theirs = qemuImg(['map', ...args, file], { cwd });
        assert.equal(ours.stdout, theirs.stdout, `map ${args.join(' ')} ${file}`);
        assert.equal(ours.stderr, theirs.stderr, `map ${args.join(' ')} ${file}`);
        assert.equal(ours.status, theirs.status);
      }
    }
  });

  it('compare -s sees the reserved host space and the end of a shorter backing file', (t) => {
    if (!requireQemu(t)) return;
    const pairs = [['x-part', 'x-small'], ['x-small', 'x-part'], ['x-over', 'x-empty'], ['x-empty', 'x-over'], ['x-solo', 'x-solo'], ['x-top', 'x-top'], ['x-r2', 'x-r2']];
    for (const pair of pairs) {
      for (const args of [['-s', ...pair], pair]) {
        const ours = vdisk(['compare', ...args], { cwd });
        const theirs = qemuImg(['compare', ...args], { cwd });
        assert.equal(ours.stdout, theirs.stdout, args.join(' '));
        assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img:', 'vdisk:'), args.join(' '));
        assert.equal(ours.status, theirs.status, args.join(' '));
      }
    }
  });
});
