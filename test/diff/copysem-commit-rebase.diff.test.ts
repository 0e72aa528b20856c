/**
 * commit and safe rebase against qemu-img: the images
 * they change must read as qemu-img's and allocate what qemu-img's do, or
 * less where vdisk deliberately writes zero clusters for zeros that
 * qemu-img copies as data (listed in the README) — table-driven over
 * qcow2 variants (v2, v3, extended L2, small clusters) and raw bases.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { assertAllocation, type Expect } from '../helpers/copysem.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-copysem-');
after(() => dir.cleanup());

/** qcow2 creation options of a variant. */
const VARIANTS: Record<string, string[]> = {
  v3: [],
  v2: ['-o', 'compat=0.10'],
  l2ext: ['-o', 'extended_l2=on'],
  c4k: ['-o', 'cluster_size=4096'],
  l2ext16k: ['-o', 'extended_l2=on,cluster_size=16k'],
};

/**
 * base (raw or qcow2) ← mid ← top in `cwd`, with data, zero clusters,
 * clusters holding written zeros and discards; `sizes` of base (at least
 * 1M), mid (at least 2M) and top (4M).
 */
function chain(cwd: string, baseFormat: string, opts: string[], sizes: readonly string[]): void {
  const [base, mid, top] = sizes as [string, string, string];
  qemuImgOk(['create', '-q', '-f', baseFormat, ...(baseFormat === 'qcow2' ? opts : []), 'base', base], { cwd });
  qemuIo(`${cwd}/base`, ['write -P 1 0 512k', 'write -P 2 768k 128k'], baseFormat);
  qemuImgOk(['create', '-q', '-f', 'qcow2', ...opts, '-b', 'base', '-F', baseFormat, 'mid', mid], { cwd });
  qemuIo(`${cwd}/mid`, ['write -P 3 256k 128k', 'write -z 512k 64k', 'write -P 0 640k 64k', 'write -P 4 1536k 4k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', ...opts, '-b', 'mid', '-F', 'qcow2', 'top', top], { cwd });
  qemuIo(`${cwd}/top`, ['write -P 5 0 64k', 'write -z 128k 64k', 'write -P 0 1M 64k', 'write -P 6 3500k 8k', 'write -z 1536k 4k', 'discard 2M 64k'], 'qcow2');
}

/** Files besides the chain: `near`, the base's content with a few sectors changed (a new backing file for rebase). */
function extras(cwd: string): void {
  qemuImgOk(['convert', '-O', 'raw', 'base', 'near'], { cwd });
  qemuIo(`${cwd}/near`, ['write -P 2 100k 512', 'write -P 0 300k 3k', 'write -P 3 800k 1k'], 'raw');
}

interface Case {
  readonly name: string;
  readonly variant: keyof typeof VARIANTS;
  readonly base: 'raw' | 'qcow2';
  /** Sizes of base, mid and top. */
  readonly sizes?: readonly string[];
  /** The command's arguments (run in the chain's directory). */
  readonly args: readonly string[];
  /** Images to compare afterwards, with their formats. */
  readonly images: readonly (readonly [string, string])[];
  readonly expect: Expect;
}

const SHORT = ['1M', '2M', '4M'];
// commit and rebase write zero clusters where qemu-img copies zeros as data: 'smaller'.
const cases: readonly Case[] = [
  { name: 'rebase onto a file differing in single sectors (v3)', variant: 'v3', base: 'raw', args: ['rebase', '-b', 'near', '-F', 'raw', 'mid'], images: [['mid', 'qcow2'], ['top', 'qcow2']], expect: 'same' },
  { name: 'rebase onto a file differing in single sectors (extended L2: subclusters)', variant: 'l2ext', base: 'raw', args: ['rebase', '-b', 'near', '-F', 'raw', 'mid'], images: [['mid', 'qcow2'], ['top', 'qcow2']], expect: 'same' },
  { name: 'rebase onto a file differing in single sectors (extended L2, 16k clusters)', variant: 'l2ext16k', base: 'qcow2', args: ['rebase', '-b', 'near', '-F', 'raw', 'mid'], images: [['mid', 'qcow2']], expect: 'same' },
  { name: 'rebase over a shorter base (extended L2)', variant: 'l2ext', base: 'qcow2', sizes: SHORT, args: ['rebase', '-b', 'base', '-F', 'qcow2', 'top'], images: [['top', 'qcow2']], expect: 'smaller' },
  { name: 'rebase to no backing file (v2)', variant: 'v2', base: 'qcow2', args: ['rebase', '-b', '', 'top'], images: [['top', 'qcow2']], expect: 'same' },
  { name: 'rebase skipping mid (4k clusters)', variant: 'c4k', base: 'qcow2', args: ['rebase', '-b', 'base', '-F', 'qcow2', 'top'], images: [['top', 'qcow2']], expect: 'smaller' },
  { name: 'commit into mid (v3)', variant: 'v3', base: 'qcow2', args: ['commit', '-q', 'top'], images: [['top', 'qcow2'], ['mid', 'qcow2']], expect: 'smaller' },
  { name: 'commit -d into mid (extended L2)', variant: 'l2ext', base: 'qcow2', args: ['commit', '-q', '-d', 'top'], images: [['top', 'qcow2'], ['mid', 'qcow2']], expect: 'smaller' },
  { name: 'commit -b into a raw base', variant: 'v3', base: 'raw', args: ['commit', '-q', '-b', 'base', 'top'], images: [['mid', 'qcow2'], ['base', 'raw']], expect: 'smaller' },
  { name: 'commit -b into a v2 base over shorter files', variant: 'v2', base: 'qcow2', sizes: SHORT, args: ['commit', '-q', '-b', 'base', 'top'], images: [['mid', 'qcow2'], ['base', 'qcow2']], expect: 'smaller' },
  { name: 'commit mid into base (4k clusters)', variant: 'c4k', base: 'qcow2', args: ['commit', '-q', 'mid'], images: [['top', 'qcow2'], ['base', 'qcow2']], expect: 'smaller' },
];

describe('commit and rebase allocate as qemu-img does (or less)', () => {
  cases.forEach((c, i) => {
    it(c.name, (t) => {
      if (!requireQemu(t)) return;
      const [q, v] = [`${dir.path}/q${i}`, `${dir.path}/v${i}`];
      for (const cwd of [q, v]) {
        mkdirSync(cwd);
        chain(cwd, c.base, VARIANTS[c.variant] as string[], c.sizes ?? ['4M', '4M', '4M']);
        extras(cwd);
      }
      const theirs = qemuImg(c.args, { cwd: q });
      const ours = vdisk(c.args, { cwd: v });
      assert.equal(ours.stderr, asVdisk(theirs.stderr));
      assert.equal(ours.status, theirs.status);
      for (const [file, format] of c.images) assertAllocation(`${q}/${file}`, `${v}/${file}`, format, c.expect, dir.path);
    });
  });
});
