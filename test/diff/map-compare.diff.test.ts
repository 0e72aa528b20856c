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
