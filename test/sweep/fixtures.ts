/**
 * The sweep's inputs, made by qemu-img and qemu-io only (so every input is
 * qemu's): raw, qcow2 in its variants, chains, vmdk, vpc, vhdx, vdi, and the
 * formats vdisk does not open yet. Each holds known data written at a few
 * offsets, unaligned and partial clusters included. Built once per run.
 */
import { mkdirSync } from 'node:fs';
import pLimit from 'p-limit';

import { run } from './proc.js';

/** One input image: its files (main first) are copied together into a case. */
export interface Fixture {
  readonly name: string;
  readonly format: string;
  readonly files: readonly string[];
  readonly size: number;
  /** writable, snapshots, bitmaps, backing, compressed, datafile, big, empty, unsupported, dirty, v2, secret */
  readonly tags: readonly string[];
  readonly build: readonly (readonly string[])[];
}

const K = 1024;
const M = K * K;
const G = K * M;
const T = K * G;

/** The secret every encrypted fixture and case uses. */
export const SECRET = ['--object', 'secret,id=sec0,data=sweep'];

/** qemu-io writes of the standard pattern for an image of `size` bytes. */
export function pattern(size: number): string[] {
  if (size === 0) return [];
  if (size >= G) return ['write -P 0x11 0 64k', `write -P 0x22 ${512 * G + 1000} 3000`, `write -P 0x55 ${size - 64 * K} 64k`];
  if (size < 4 * M) return ['write -P 0x11 0 4k', 'write -P 0x22 5000 3000', `write -P 0x55 ${size - 512} 512`];
  return [
    'write -P 0x11 0 64k',
    'write -P 0x22 1000000 3000',
    'write -P 0x33 2M 192k',
    `write -z ${2 * M + 64 * K} 64k`,
    `write -P 0x44 ${3 * M + 512} 512`,
    `write -P 0x55 ${size - 4096} 4096`,
  ];
}

function io(format: string, file: string, cmds: readonly string[]): string[][] {
  return cmds.length ? [['qemu-io', '-f', format, ...cmds.flatMap((c) => ['-c', c]), file]] : [];
}

function create(format: string, file: string, size: number | string, opts = ''): string[] {
  return ['qemu-img', 'create', '-q', '-f', format, ...(opts ? ['-o', opts] : []), file, String(size)];
}

/** A single-file image of `format` made by `create` and filled with the pattern. */
function plain(name: string, format: string, size: number, opts = '', tags: string[] = ['writable'], extra: string[] = []): Fixture {
  return { name, format, files: [name], size, tags, build: [create(format, name, size, opts), ...io(format, name, [...pattern(size), ...extra])] };
}

/** An image converted by qemu-img from a patterned raw file (streamOptimized cannot be written at random). */
function converted(name: string, format: string, opts: string, files: string[], tags: string[]): Fixture {
  const src = `${name}.src`;
  return {
    name, format, files: [name, ...files], size: 4 * M, tags,
    build: [create('raw', src, 4 * M), ...io('raw', src, pattern(4 * M)), ['qemu-img', 'convert', '-O', format, '-o', opts, src, name], ['rm', src]],
  };
}

function withFiles(f: Fixture, files: string[], tags: string[] = []): Fixture {
  return { ...f, files: [f.name, ...files], tags: [...f.tags, ...tags] };
}

const qio = (file: string, cmds: string[]): string[][] => io('qcow2', file, cmds);

function chain3(): Fixture {
  const [b, m, t] = ['c3-base.qcow2', 'c3-mid.qcow2', 'c3-top.qcow2'];
  return {
    name: t, format: 'qcow2', files: [t, m, b], size: 4 * M, tags: ['writable', 'backing', 'chain'],
    build: [
      create('qcow2', b, 4 * M), ...qio(b, ['write -P 0xa1 0 1M', 'write -P 0xa2 2M 1M']),
      ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', b, '-F', 'qcow2', m], ...qio(m, ['write -P 0xb1 512k 1M', 'write -z 2304k 256k']),
      ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', m, '-F', 'qcow2', t], ...qio(t, ['write -P 0xc1 1M 64k', 'write -P 0xc2 3000000 5000']),
    ],
  };
}

function overShortRaw(): Fixture {
  return {
    name: 'c-over.qcow2', format: 'qcow2', files: ['c-over.qcow2', 'c-short.raw'], size: 4 * M, tags: ['writable', 'backing'],
    build: [
      create('raw', 'c-short.raw', M), ...io('raw', 'c-short.raw', ['write -P 0x5a 0 1M']),
      ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'c-short.raw', '-F', 'raw', 'c-over.qcow2', '4M'], ...qio('c-over.qcow2', ['write -P 0x77 64k 64k', 'write -P 0x78 900k 200k']),
    ],
  };
}

function overExtendedL2(): Fixture {
  return {
    name: 'c-el2.qcow2', format: 'qcow2', files: ['c-el2.qcow2', 'c-el2b.qcow2'], size: 4 * M, tags: ['writable', 'backing'],
    build: [
      create('qcow2', 'c-el2b.qcow2', 4 * M), ...qio('c-el2b.qcow2', ['write -P 0x99 0 4M']),
      ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', 'c-el2b.qcow2', '-F', 'qcow2', 'c-el2.qcow2'],
      ...qio('c-el2.qcow2', ['write -P 0x12 1052672 2048', 'write -z 2M 4k', 'write -P 0x13 3M 64k']),
    ],
  };
}

function snapshots(name: string, opts: string): Fixture {
  const snap = (s: string): string[] => ['qemu-img', 'snapshot', '-c', s, name];
  return {
    name, format: 'qcow2', files: [name], size: 4 * M, tags: ['writable', 'snapshots', ...(opts.includes('0.10') ? ['v2'] : [])],
    build: [
      create('qcow2', name, 4 * M, opts), ...qio(name, pattern(4 * M)), snap('s1'),
      ...qio(name, ['write -P 0x61 0 128k', 'write -z 3M 64k']), snap('s2'), ...qio(name, ['write -P 0x62 1M 4k']),
    ],
  };
}

function bitmaps(): Fixture {
  const n = 'q-bm.qcow2';
  return {
    name: n, format: 'qcow2', files: [n], size: 4 * M, tags: ['writable', 'bitmaps'],
    build: [
      create('qcow2', n, 4 * M), ['qemu-img', 'bitmap', '--add', n, 'bm-on'],
      ['qemu-img', 'bitmap', '--add', '--disable', '-g', '128k', n, 'bm-off'], ...qio(n, pattern(4 * M)),
    ],
  };
}

function dataFile(name: string, data: string, raw: boolean): Fixture {
  return withFiles(plain(name, 'qcow2', 4 * M, `data_file=${data}${raw ? ',data_file_raw=on' : ''}`), [data], ['datafile']);
}

/** lazy_refcounts=on, killed mid-write: dirty flag set, refcounts stale. */
function dirty(): Fixture {
  const n = 'q-dirty.qcow2';
  return {
    name: n, format: 'qcow2', files: [n], size: 4 * M, tags: ['writable', 'dirty'],
    build: [create('qcow2', n, 4 * M, 'lazy_refcounts=on'), ['sh', '-c', `ulimit -c 0; qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 4k' -c abort ${n}; true`]],
  };
}

function secretImage(name: string, format: string, opts: string, driverOpts: string): Fixture {
  return {
    name, format, files: [name], size: 4 * M, tags: ['unsupported', 'secret'],
    build: [
      ['qemu-img', 'create', '-q', '-f', format, ...SECRET, '-o', opts, name, '4M'],
      ['qemu-io', ...SECRET, '--image-opts', ...pattern(4 * M).flatMap((c) => ['-c', c]), `${driverOpts},file.filename=${name}`],
    ],
  };
}

/** Every fixture, in a fixed order. */
export const FIXTURES: readonly Fixture[] = [
  plain('r-data.raw', 'raw', 4 * M),
  plain('r-empty.raw', 'raw', 0, '', ['writable', 'empty']),
  plain('r-odd.raw', 'raw', 1000448),
  plain('r-zero.raw', 'raw', 4 * M, '', ['writable', 'zero']),
  plain('r-ones.raw', 'raw', M, '', ['writable'], ['write -P 0x5b 0 1M']),
  plain('r-zdata.raw', 'raw', M, '', ['writable', 'zero'], ['write -P 0 0 1M']),
  plain('r-1t.raw', 'raw', T, '', ['writable', 'big']),
  { name: 'r-5b.raw', format: 'raw', files: ['r-5b.raw'], size: 5, tags: ['writable'], build: [['sh', '-c', 'printf hello > r-5b.raw']] },
  plain('q-v3.qcow2', 'qcow2', 4 * M),
  plain('q-v2.qcow2', 'qcow2', 4 * M, 'compat=0.10', ['writable', 'v2']),
  plain('q-c512.qcow2', 'qcow2', 4 * M, 'cluster_size=512'),
  plain('q-c4k.qcow2', 'qcow2', 4 * M, 'cluster_size=4k'),
  plain('q-c2m.qcow2', 'qcow2', 8 * M, 'cluster_size=2M'),
  plain('q-el2.qcow2', 'qcow2', 4 * M, 'extended_l2=on', ['writable'], ['write -P 0x66 1050624 2048', 'write -z 1M 2k']),
  plain('q-rc1.qcow2', 'qcow2', 4 * M, 'refcount_bits=1'),
  plain('q-rc64.qcow2', 'qcow2', 4 * M, 'refcount_bits=64'),
  plain('q-lazy.qcow2', 'qcow2', 4 * M, 'lazy_refcounts=on'),
  dirty(),
  plain('q-zlib.qcow2', 'qcow2', 4 * M, '', ['writable', 'compressed'], ['write -c -P 0x71 1M 64k', 'write -c -P 0x72 1536k 64k']),
  plain('q-zstd.qcow2', 'qcow2', 4 * M, 'compression_type=zstd', ['writable', 'compressed'], ['write -c -P 0x73 1M 64k']),
  plain('q-zero.qcow2', 'qcow2', 4 * M, '', ['writable', 'zero'], ['write -P 0x7a 1M 1M', 'write -z 1M 128k', 'write -z -u 1280k 128k']),
  plain('q-odd.qcow2', 'qcow2', 1000448),
  plain('q-empty.qcow2', 'qcow2', 0, '', ['writable', 'empty']),
  plain('q-1t.qcow2', 'qcow2', T, '', ['writable', 'big']),
  snapshots('q-snap.qcow2', ''),
  snapshots('q-snap2.qcow2', 'compat=0.10'),
  bitmaps(),
  dataFile('q-df.qcow2', 'q-df.data', false),
  dataFile('q-dfr.qcow2', 'q-dfr.data', true),
  chain3(),
  overShortRaw(),
  overExtendedL2(),
  plain('v-sparse.vmdk', 'vmdk', 4 * M),
  withFiles(plain('v-flat.vmdk', 'vmdk', 4 * M, 'subformat=monolithicFlat'), ['v-flat-flat.vmdk']),
  withFiles(plain('v-2gs.vmdk', 'vmdk', 4 * M, 'subformat=twoGbMaxExtentSparse'), ['v-2gs-s001.vmdk']),
  withFiles(plain('v-2gf.vmdk', 'vmdk', 4 * M, 'subformat=twoGbMaxExtentFlat'), ['v-2gf-f001.vmdk']),
  converted('v-stream.vmdk', 'vmdk', 'subformat=streamOptimized', [], ['compressed']),
  plain('v-zg.vmdk', 'vmdk', 4 * M, 'zeroed_grain=on'),
  plain('p-dyn.vhd', 'vpc', 4 * M),
  plain('p-fix.vhd', 'vpc', 4 * M, 'subformat=fixed'),
  plain('p-force.vhd', 'vpc', 4 * M, 'force_size=on'),
  plain('x-dyn.vhdx', 'vhdx', 4 * M),
  plain('x-fix.vhdx', 'vhdx', 4 * M, 'subformat=fixed'),
  plain('d-dyn.vdi', 'vdi', 4 * M),
  plain('d-static.vdi', 'vdi', 4 * M, 'static=on'),
  plain('u.qed', 'qed', 4 * M),
  plain('u.qcow', 'qcow', 4 * M, '', ['unsupported']),
  plain('u.parallels', 'parallels', 4 * M),
  secretImage('u.luks', 'luks', 'key-secret=sec0,iter-time=10', 'driver=luks,key-secret=sec0'),
  secretImage('q-enc.qcow2', 'qcow2', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', 'driver=qcow2,encrypt.key-secret=sec0'),
];

/** The fixture called `name`. */
export function fixture(name: string): Fixture {
  const f = FIXTURES.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

/** The fixture one of whose files is `file` (a backing file, extent or data file belongs to its image's fixture). */
export function fixtureOf(file: string): Fixture {
  const f = FIXTURES.find((x) => x.files.includes(file));
  if (!f) throw new Error(`no fixture holds ${file}`);
  return f;
}

/** Builds every fixture into `dir` (which must be empty or new); throws with qemu's message when one fails. */
export async function buildFixtures(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const limit = pLimit(4);
  await Promise.all(
    FIXTURES.map((f) =>
      limit(async () => {
        for (const [cmd, ...args] of f.build) {
          const r = await run(cmd!, args, { cwd: dir, timeoutMs: 60_000 });
          if (r.status !== 0) throw new Error(`fixture ${f.name}: ${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
        }
      }),
    ),
  );
}
