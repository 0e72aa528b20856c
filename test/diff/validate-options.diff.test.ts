/**
 * Option handling shared by convert, measure and amend, against qemu-img
 * 7.2: `-o size=` (convert ignores it), `convert -c` to vmdk subformats,
 * the `-o` list syntax, repeated and unknown options, number and boolean
 * parsing. Same exit status, stdout and stderr; the same image when
 * qemu-img makes one.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { requireQemu, tmpDir } from '../helpers/qemu.js';
import { pool, runPair, type PairCase } from '../helpers/validate-pair.js';

const dir = tmpDir('vdisk-validate-options-');
after(() => dir.cleanup());

const SRC = ['qemu-img create -q -f raw s.raw 3M', "qemu-io -f raw -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' s.raw"];
const QCOW = ['qemu-img create -q -f qcow2 a.qcow2 3M', "qemu-io -f qcow2 -c 'write -P 1 0 64k' a.qcow2"];

function convert(format: string, args: readonly string[]): PairCase {
  const image = `o.${format}`;
  return { args: ['convert', '-O', format, ...args, 's.raw', image], setup: SRC, image, format };
}

const CONVERT_CASES: PairCase[] = [
  convert('qcow2', ['-o', 'size=10M']),
  convert('qcow2', ['-o', 'size=1M']),
  convert('raw', ['-o', 'size=10M']),
  convert('vmdk', ['-o', 'size=10M']),
  convert('qcow2', ['-o', 'size=bogus']),
  convert('vmdk', ['-c']),
  convert('vmdk', ['-c', '-o', 'subformat=twoGbMaxExtentSparse']),
  convert('vmdk', ['-o', 'subformat=twoGbMaxExtentFlat']),
  convert('vmdk', ['-c', '-o', 'subformat=monolithicFlat']),
  convert('vpc', ['-c']),
  convert('vmdk', ['-o', 'preallocation=metadata']),
  convert('vmdk', ['-o', 'preallocation=bogus']),
  convert('raw', ['-o', 'preallocation=metadata']),
  convert('vdi', ['-o', 'preallocation=falloc,static=on']),
  convert('qcow2', ['-o', 'extent_size_hint=5G']),
  convert('qcow2', ['-o', 'refcount_bits=-1']),
  convert('qcow2', ['-o', 'lazy_refcounts=yes']),
  convert('qcow2', ['-o', 'cluster_size=4k', '-o', 'cluster_size=8k']),
  convert('qcow2', ['-o', 'bogus=1']),
  convert('qcow2', ['-o', ',,']),
  convert('qcow2', ['-o', 'cluster_size=4k,,,']),
  convert('qcow2', ['-o', 'backing_fmt=raw']),
];

function measure(args: readonly string[]): PairCase {
  return { args: ['measure', ...args], setup: SRC };
}

const MEASURE_CASES: PairCase[] = [
  measure(['-O', 'qcow2', '-o', 'size=10M', 's.raw']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', ',,']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', '']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'a,']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'encrypt.format=luks']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'refcount_bits=-1']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'refcount_bits=18446744073709551615']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'refcount_bits=99999999999999999999']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'refcount_bits=010']),
  measure(['-O', 'qcow2', '--size', '1M', '-o', 'cluster_size=4k', '-o', 'cluster_size=8k']),
  measure(['-O', 'raw', '--size', '1M', '-o', 'preallocation=metadata']),
  measure(['-O', 'raw', '--size', '1M', '-o', 'bogus=1']),
];

function amend(options: readonly string[]): PairCase {
  return { args: ['amend', ...options.flatMap((o) => ['-o', o]), 'a.qcow2'], setup: QCOW, image: 'a.qcow2', format: 'qcow2' };
}

const AMEND_CASES: PairCase[] = [
  amend(['refcount_bits=18446744073709551615']),
  amend(['refcount_bits=-1']),
  amend(['refcount_bits=010']),
  amend(['refcount_bits=99999999999999999999']),
  amend(['lazy_refcounts=yes']),
  amend([',,']),
  amend(['']),
  amend(['compat=0.10', 'compat=1.1']),
  amend(['bogus=1']),
];

async function compareAll(name: string, cases: readonly PairCase[]): Promise<void> {
  const results = await pool(cases, 4, (c, i) => runPair(dir.path, `${name}-${i}`, c));
  const diffs: string[] = [];
  results.forEach(({ qemu, vdisk }, i) => {
    const c = cases[i] as PairCase;
    const keys = qemu.status === 0 ? (['status', 'stdout', 'stderr', 'files', 'info', 'check', 'map'] as const) : (['status', 'stdout', 'stderr'] as const);
    for (const k of keys) {
      if (JSON.stringify(qemu[k]) !== JSON.stringify(vdisk[k])) diffs.push(`${c.args.join(' ')}: ${k}\n  qemu:  ${JSON.stringify(qemu[k])}\n  vdisk: ${JSON.stringify(vdisk[k])}`);
    }
  });
  assert.deepEqual(diffs, []);
}

describe('options shared by convert, measure and amend equal qemu-img', { concurrency: 1 }, () => {
  it('convert: -o size= is ignored, -c to vmdk, target options', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('convert', CONVERT_CASES);
  });

  it('measure: -o list syntax, numbers, encryption', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('measure', MEASURE_CASES);
  });

  it('amend: numbers, booleans, lists, repeated options', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('amend', AMEND_CASES);
  });
});
