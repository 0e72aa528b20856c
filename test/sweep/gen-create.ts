/**
 * create: every format × sizes (valid, big, invalid, missing) × every
 * option value (valid and invalid), option pairs (seeded values), backing
 * files (-b/-F/-u and their misuse) and external data files.
 */
import { img, makeCase, pick, seeded, type Rand } from './case-kit.js';
import { BAD_SIZES, BIG_SIZES, CREATE_OPTIONS, NO_BIG, SMALL_SIZES, ALL_FORMATS, ext, formatPrelude, joinOpts, requiredOptions, type OptionValues } from './options.js';
import type { Case } from './types.js';

/** `create -f FMT [-o ...] out.EXT SIZE` with the format's required prelude. */
export function createArgv(format: string, opts: string, size: string | undefined, extra: string[] = []): string[] {
  const o = joinOpts(requiredOptions(format), opts);
  return ['create', '-f', format, ...formatPrelude(format), ...extra, ...(o ? ['-o', o] : []), `out.${ext(format)}`, ...(size === undefined ? [] : [size])];
}

function createCase(format: string, opts: string, size: string | undefined, extra: string[] = [], inputs: string[] = []): Case {
  return makeCase('create', inputs, [img(...createArgv(format, opts, size, extra))], { hints: { [`out.${ext(format)}`]: format } });
}

/** Preallocating large images writes them in full, and a 1 TiB twoGbMaxExtent vmdk is 512 files: keep those small. */
function heavy(opts: string): boolean {
  return /preallocation=(full|falloc|metadata)|static=on|subformat=(fixed|twoGb)/.test(opts);
}

/**
 * LUKS: vdisk cannot create it yet, so every case says the same; and
 * qemu-img's key-derivation benchmark makes each create take seconds, or
 * a minute on a busy machine. A few sizes and one value per option.
 */
function fewer(format: string, values: readonly string[]): readonly string[] {
  return format === 'luks' ? values.slice(0, 1) : values;
}

function sizeCases(format: string): Case[] {
  const sizes = format === 'luks' ? ['0', '4M', 'abc'] : [...SMALL_SIZES, ...(NO_BIG.has(format) ? [] : BIG_SIZES), ...BAD_SIZES];
  return [...sizes.map((s) => createCase(format, '', s)), createCase(format, '', undefined), createCase(format, '', '4M', ['-q'])];
}

function singleOptionCases(format: string): Case[] {
  const out: Case[] = [];
  for (const o of CREATE_OPTIONS[format] ?? []) {
    for (const v of [...fewer(format, o.valid), ...fewer(format, o.invalid)]) out.push(createCase(format, `${o.name}=${v}`, '4M'));
    if (o.valid[0] !== undefined && format !== 'luks') out.push(createCase(format, `${o.name}=${o.valid.at(-1)}`, '1000001'));
  }
  return out;
}

function value(r: Rand, o: OptionValues): string {
  const bad = o.invalid.length && r() < 0.15;
  return `${o.name}=${pick(r, bad || !o.valid.length ? o.invalid : o.valid)}`;
}

/** Every pair of options, `perPair` seeded value combinations each. */
function pairCases(format: string, perPair: number, seed: number): Case[] {
  const r = seeded(seed);
  const opts = CREATE_OPTIONS[format] ?? [];
  const out: Case[] = [];
  for (let i = 0; i < opts.length; i++) {
    for (let j = i + 1; j < opts.length; j++) {
      for (let k = 0; k < perPair; k++) {
        const o = `${value(r, opts[i]!)},${value(r, opts[j]!)}`;
        out.push(createCase(format, o, pick(r, heavy(o) ? ['4M', '1000001', '64M'] : ['4M', '1000001', '1G', '1T'])));
      }
    }
  }
  return out;
}

/** Backing files: -b/-F, -u, the size taken from the backing file, and the misuses qemu refuses. */
function backingCases(): Case[] {
  const out: Case[] = [];
  const backings: [string, string][] = [['q-v3.qcow2', 'qcow2'], ['r-data.raw', 'raw'], ['v-sparse.vmdk', 'vmdk'], ['p-dyn.vhd', 'vpc'], ['q-odd.qcow2', 'qcow2'], ['r-1t.raw', 'raw']];
  for (const format of ['qcow2', 'vmdk', 'qed', 'qcow', 'raw', 'vpc', 'vhdx', 'vdi']) {
    for (const [b, bf] of backings) {
      out.push(createCase(format, '', undefined, ['-b', b, '-F', bf], [b]));
      if (format === 'qcow2' || format === 'vmdk') out.push(createCase(format, '', '8M', ['-b', b, '-F', bf], [b]));
    }
    out.push(createCase(format, '', '4M', ['-b', 'q-v3.qcow2'], ['q-v3.qcow2']));
    out.push(createCase(format, '', '4M', ['-u', '-b', 'nosuch.qcow2', '-F', 'qcow2']));
  }
  const q = (opts: string, size: string | undefined, extra: string[], inputs: string[] = ['q-v3.qcow2']): Case => createCase('qcow2', opts, size, extra, inputs);
  out.push(
    q('', '4M', ['-F', 'raw'], []),
    q('', '4M', ['-b', 'nosuch.qcow2', '-F', 'qcow2'], []),
    q('', undefined, ['-u', '-b', 'nosuch.qcow2', '-F', 'qcow2'], []),
    q('', '2M', ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('', '4M', ['-b', 'q-v3.qcow2', '-F', 'raw']),
    q('', '4M', ['-b', 'q-v3.qcow2', '-F', 'bogus']),
    q('', '4M', ['-b', 'out.qcow2', '-F', 'qcow2'], []),
    q('backing_file=q-v3.qcow2,backing_fmt=qcow2', '4M', []),
    q('backing_file=q-v3.qcow2', '4M', []),
    q('backing_fmt=qcow2', '4M', [], []),
    q('preallocation=metadata', '4M', ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('preallocation=full', '4M', ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('extended_l2=on,preallocation=metadata', '4M', ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('extended_l2=on,preallocation=falloc', '4M', ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('compat=0.10', undefined, ['-b', 'q-v3.qcow2', '-F', 'qcow2']),
    q('', undefined, ['-b', 'c3-top.qcow2', '-F', 'qcow2'], ['c3-top.qcow2']),
    createCase('vmdk', 'backing_fmt=qcow2', '4M', ['-b', 'v-sparse.vmdk'], ['v-sparse.vmdk']),
    createCase('vmdk', 'subformat=monolithicFlat', '4M', ['-b', 'v-sparse.vmdk', '-F', 'vmdk'], ['v-sparse.vmdk']),
  );
  return out;
}

function dataFileCases(): Case[] {
  const opts = [
    'data_file=out.data', 'data_file=out.data,data_file_raw=on', 'data_file_raw=on', 'data_file=out.data,compat=0.10',
    'data_file=out.data,preallocation=metadata', 'data_file=out.data,preallocation=falloc', 'data_file=out.data,preallocation=full',
    'data_file=out.data,data_file_raw=on,preallocation=full', 'data_file=out.data,data_file_raw=on,preallocation=metadata',
    'data_file=out.data,extended_l2=on', 'data_file=out.data,compression_type=zstd', 'data_file=out.data,cluster_size=4k',
    'data_file=r-data.raw', 'data_file=r-data.raw,data_file_raw=on', 'data_file=out.qcow2', 'data_file=',
  ];
  return opts.map((o) => makeCase('create', o.includes('r-data') ? ['r-data.raw'] : [], [img(...createArgv('qcow2', o, '4M'))], { hints: { 'out.qcow2': 'qcow2', 'out.data': 'raw' } }));
}

function miscCases(): Case[] {
  return [
    ...ALL_FORMATS.flatMap((f) => [createCase(f, 'help', undefined), createCase(f, '?', undefined)]),
    createCase('qcow2', 'bogus_option=1', '4M'),
    createCase('qcow2', 'size=4M', undefined),
    createCase('qcow2', 'size=1M', '4M'),
    createCase('qcow2', 'cluster_size=4k', '4M', ['-o', 'lazy_refcounts=on']),
    createCase('qcow2', 'cluster_size=4k,,x', '4M'),
    createCase('bogus', '', '4M'),
    makeCase('create', [], [img('create', 'out.raw', '4M')], { hints: { 'out.raw': 'raw' } }),
    makeCase('create', [], [img('create', '-f', 'qcow2')]),
    makeCase('create', [], [img('create', '-f', 'qcow2', 'out.qcow2', '4M', 'extra')]),
    makeCase('create', [], [img('create', '-f', 'qcow2', '-o', 'compat=1.1', '-o', 'compat=0.10', 'out.qcow2', '4M')], { hints: { 'out.qcow2': 'qcow2' } }),
    makeCase('create', ['r-data.raw'], [img('create', '-f', 'qcow2', 'r-data.raw', '4M')], { hints: { 'r-data.raw': 'qcow2' } }),
  ];
}

/** Every create case. */
export function createCases(): Case[] {
  return [
    ...ALL_FORMATS.flatMap((f) => [...sizeCases(f), ...singleOptionCases(f)]),
    ...pairCases('qcow2', 3, 101),
    ...pairCases('vmdk', 2, 102),
    ...pairCases('vhdx', 2, 103),
    ...pairCases('vpc', 2, 104),
    ...pairCases('vdi', 2, 105),
    ...pairCases('raw', 2, 106),
    ...backingCases(),
    ...dataFileCases(),
    ...miscCases(),
  ];
}
