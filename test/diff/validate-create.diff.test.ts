/**
 * create's option validation against qemu-img 7.2, table-driven: format ×
 * option × value (valid, edge and invalid), sizes, `-b`/`-F`, and the
 * option-list syntax shared with convert/measure/amend. Each case must give
 * the same exit status, stdout and stderr, and, when qemu-img succeeds, an
 * image qemu-img reads the same way (info, check, map). When qemu-img fails
 * after making the file it leaves an empty one; vdisk leaves none (README:
 * deliberate differences), so only "no more files than qemu-img" is asked then.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { hasQemu, requireQemu, tmpDir } from '../helpers/qemu.js';
import { pool, runPair, type PairCase } from '../helpers/validate-pair.js';

const dir = tmpDir('vdisk-validate-create-');
after(() => dir.cleanup());

const IMAGE: Record<string, string> = { raw: 'i.raw', qcow2: 'i.qcow2', vmdk: 'i.vmdk', vpc: 'i.vpc', vhdx: 'i.vhdx', vdi: 'i.vdi' };

/** `create -f FMT [-o OPTS] IMAGE [SIZE] [extra args]`. */
function create(format: string, options: string | undefined, size: string | undefined, extra: readonly string[] = []): PairCase {
  const image = IMAGE[format] as string;
  return {
    args: ['create', '-f', format, ...(options === undefined ? [] : ['-o', options]), ...extra, image, ...(size === undefined ? [] : [size])],
    image,
    format,
  };
}

/** The file protocol's options, checked for every format that takes them from the protocol. */
const PROTOCOL_CASES: PairCase[] = [];
for (const format of ['raw', 'vmdk', 'vpc', 'vhdx', 'vdi']) {
  for (const mode of ['metadata', 'full', 'bogus']) PROTOCOL_CASES.push(create(format, `preallocation=${mode}`, '3M'));
  for (const hint of ['4294967295', '4294967296']) PROTOCOL_CASES.push(create(format, `extent_size_hint=${hint}`, '3M'));
  PROTOCOL_CASES.push(create(format, 'nocow=x', '3M'));
}
PROTOCOL_CASES.push(
  create('vmdk', 'preallocation=', '3M'),
  create('vdi', 'preallocation=falloc', '3M'),
  // The order of the checks: the format's own first for vmdk, the protocol's first for the others.
  create('vmdk', 'adapter_type=x,preallocation=bogus', '3M'),
  create('vmdk', 'subformat=x,preallocation=metadata', '3M'),
  create('vmdk', 'compat6=on,hwversion=6,preallocation=metadata', '3M'),
  create('vmdk', 'subformat=x,extent_size_hint=5G', '3M'),
  create('vpc', 'subformat=x,preallocation=metadata', '3M'),
  create('vhdx', 'block_size=3M,preallocation=metadata', '3M'),
  create('vdi', 'static=x,preallocation=bogus', '3M'),
  create('raw', 'preallocation=metadata,extent_size_hint=5G', '3M'),
  create('qcow2', 'extent_size_hint=5G', '3M'),
  create('qcow2', 'cluster_size=3k,extent_size_hint=5G', '3M'),
  create('raw', 'preallocation=falloc', '1000'),
  create('raw', 'preallocation=falloc', '0'),
);

/** Values as qemu-img prints and parses them (booleans as written, numbers through strtoull). */
const VALUE_CASES: PairCase[] = [
  create('vmdk', 'compat6=yes', '3M'),
  create('vmdk', 'compat6=n', '3M'),
  create('vmdk', 'zeroed_grain=true', '3M'),
  create('vpc', 'force_size=yes', '3M'),
  create('vdi', 'static=true', '3M'),
  create('vhdx', 'block_state_zero=no', '3M'),
  create('qcow2', 'lazy_refcounts=y', '3M'),
  create('qcow2', 'extended_l2=yes,cluster_size=64k', '3M'),
  create('qcow2', 'refcount_bits=010', '3M'),
  create('qcow2', 'refcount_bits=0x10', '3M'),
  create('qcow2', 'refcount_bits= 16', '3M'),
  create('qcow2', 'refcount_bits=+16', '3M'),
  create('qcow2', 'refcount_bits=-1', '3M'),
  create('qcow2', 'refcount_bits=08', '3M'),
  create('qcow2', 'refcount_bits=16k', '3M'),
  create('qcow2', 'refcount_bits=18446744073709551615', '3M'),
  create('qcow2', 'refcount_bits=18446744073709551616', '3M'),
  create('qcow2', 'refcount_bits=99999999999999999999', '3M'),
  create('qcow2', 'cluster_size=0x10000', '3M'),
  create('qcow2', 'compression_type=x,preallocation=x', '3M'),
  create('qcow2', 'encryption=on', '3M'),
  create('qcow2', 'encrypt.format=luks', '3M'),
  create('qcow2', 'encrypt.format=bogus', '3M'),
  create('qcow2', 'encrypt.format=bogus,compat=x', '3M'),
  create('qcow2', 'encrypt.cipher-alg=aes-128', '3M'),
  create('qcow2', 'encrypt.format=luks,encryption=on', '3M'),
  create('qcow2', 'encryption=on,compat=0.10,lazy_refcounts=on', '3M'),
  create('qcow2', 'encryption=off', '3M'),
];

/** -b/-F: qemu-img sets backing_fmt before backing_file and lets the format judge. */
const BACKING_CASES: PairCase[] = [
  create('qcow2', undefined, '1M', ['-F', 'raw']),
  create('qcow2', undefined, '1M', ['-F', 'raw', '-u']),
  create('raw', undefined, '1M', ['-F', 'raw']),
  create('raw', undefined, '1M', ['-b', 'b.raw', '-F', 'raw']),
  create('vdi', undefined, '1M', ['-F', 'vdi']),
  create('vmdk', undefined, '1M', ['-F', 'vmdk']),
  create('vmdk', undefined, '1M', ['-F', 'raw']),
  create('qcow2', 'backing_fmt=raw', '1M'),
];

/** Sizes around the edges qemu-img and vdisk share (above 2^53 vdisk refuses: README). */
const SIZE_CASES: PairCase[] = [];
for (const format of ['raw', 'qcow2', 'vmdk', 'vpc', 'vhdx', 'vdi']) {
  for (const size of ['0', '511', '513', '-1', '1k5']) SIZE_CASES.push(create(format, undefined, size));
}
for (const format of ['raw', 'qcow2', 'vpc', 'vdi']) SIZE_CASES.push({ ...create(format, undefined, '1T'), noMap: true });
SIZE_CASES.push({ ...create('raw', undefined, '1P'), noMap: true }, { ...create('raw', undefined, '2P'), noMap: true });

/** `-o` list syntax (accumulate_options): empty, leading comma, dangling escape. */
const LIST_CASES: PairCase[] = [];
for (const list of [',,', ',', '', 'a,', 'cluster_size=4k,,,', ',cluster_size=4k', 'cluster_size=4k,,']) LIST_CASES.push(create('qcow2', list, '1M'));
LIST_CASES.push(
  { args: ['create', '-f', 'qcow2', '-o', 'cluster_size=4k', '-o', 'cluster_size=8k', 'i.qcow2', '1M'], image: 'i.qcow2', format: 'qcow2' },
  { args: ['create', '-f', 'raw', '-o', 'size=1M', 'i.raw', '2M'], image: 'i.raw', format: 'raw' },
  { args: ['create', '-f', 'raw', '-o', 'size=1M', '-o', 'size=2M', 'i.raw'], image: 'i.raw', format: 'raw' },
);

async function compareAll(name: string, cases: readonly PairCase[]): Promise<void> {
  const results = await pool(cases, 4, (c, i) => runPair(dir.path, `${name}-${i}`, c));
  const diffs: string[] = [];
  results.forEach(({ qemu, vdisk }, i) => {
    const c = cases[i] as PairCase;
    const what = c.args.join(' ');
    const keys = ['status', 'stdout', 'stderr'] as const;
    for (const k of keys) if (qemu[k] !== vdisk[k]) diffs.push(`${what}: ${k}\n  qemu:  ${JSON.stringify(qemu[k])}\n  vdisk: ${JSON.stringify(vdisk[k])}`);
    if (qemu.status === 0) {
      for (const k of ['files', 'info', 'check', 'map'] as const) {
        if (JSON.stringify(qemu[k]) !== JSON.stringify(vdisk[k])) diffs.push(`${what}: ${k}\n  qemu:  ${JSON.stringify(qemu[k])}\n  vdisk: ${JSON.stringify(vdisk[k])}`);
      }
    } else {
      const names = new Set(qemu.files.map((f) => f.split(':')[0]));
      const extra = vdisk.files.filter((f) => !names.has(f.split(':')[0]));
      if (extra.length > 0) diffs.push(`${what}: vdisk left ${extra.join(', ')} after failing`);
    }
  });
  assert.deepEqual(diffs, []);
}

describe('create option validation equals qemu-img', { concurrency: 1 }, () => {
  it('file protocol options (preallocation, extent_size_hint, nocow) for raw, vmdk, vpc, vhdx and vdi', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('proto', PROTOCOL_CASES);
  });

  it('option values printed and parsed as qemu-img does (booleans, numbers, encryption)', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('values', VALUE_CASES);
  });

  it('backing file and backing format arguments', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll(
      'backing',
      BACKING_CASES.map((c) => ({ ...c, setup: ['qemu-img create -q -f raw b.raw 1M'] })),
    );
  });

  it('sizes: 0, 511, odd, 1 TiB, negative, bad suffixes, too large for the file system', async (t) => {
    if (!requireQemu(t)) return;
    await compareAll('sizes', SIZE_CASES);
  });

  it('-o list syntax and repeated options', async (t) => {
    if (!requireQemu(t) || !hasQemu) return;
    await compareAll('lists', LIST_CASES);
  });
});
