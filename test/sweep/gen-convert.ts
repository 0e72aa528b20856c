/**
 * convert: every source fixture to every target format (with and without
 * -f), every target option value on seeded sources, option pairs, and each
 * convert flag (-c, -S, -m, -W, -C, --salvage, -r, -t/-T, -U, -p, -q, -n,
 * --target-is-zero, --image-opts, -l, --bitmaps, -B/-F, multiple sources).
 */
import { ALL, img, makeCase, pick, qemuImg, sample, seeded, without, type Rand } from './case-kit.js';
import { fixture, SECRET, type Fixture } from './fixtures.js';
import { CREATE_OPTIONS, OTHER_FORMATS, VDISK_FORMATS, ext, formatPrelude, joinOpts, requiredOptions } from './options.js';
import type { Case, Step } from './types.js';

const TARGETS = [...VDISK_FORMATS, ...OTHER_FORMATS];
/** Ordinary sources: no big, secret or unsupported ones (those get their own plain cases). */
const ORDINARY = without(ALL, 'big', 'secret', 'unsupported');

/** `convert [flags] [-f SF] -O T [-o ...] SRC... out.EXT`. */
function convertCase(sources: Fixture[], target: string, opts: string, flags: string[] = [], withF = true, setup: Step[] = []): Case {
  const o = joinOpts(requiredOptions(target), opts);
  const fmt = withF && sources[0] ? ['-f', sources[0].format] : [];
  const out = `out.${ext(target)}`;
  const argv = ['convert', ...formatPrelude(target), ...flags, ...fmt, '-O', target, ...(o ? ['-o', o] : []), ...sources.map((s) => s.name), out];
  return makeCase('convert', sources.map((s) => s.name), [...setup, img(...argv)], { hints: { [out]: target } });
}

function plainCases(): Case[] {
  const out: Case[] = [];
  for (const s of ALL) {
    for (const t of VDISK_FORMATS) out.push(convertCase([s], t, ''));
    for (const t of ['raw', 'qcow2']) out.push(convertCase([s], t, '', [], false));
    // not for big sources: a LUKS target is written in full (it has no zero-initialised state)
    if (!s.tags.includes('big')) out.push(convertCase([s], OTHER_FORMATS[ALL.indexOf(s) % OTHER_FORMATS.length]!, ''));
  }
  out.push(makeCase('convert', ['u.luks'], [img('convert', ...SECRET, '--image-opts', '-O', 'qcow2', 'driver=luks,key-secret=sec0,file.filename=u.luks', 'out.qcow2')], { hints: { 'out.qcow2': 'qcow2' } }));
  return out;
}

function optionCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const t of TARGETS) {
    for (const o of CREATE_OPTIONS[t] ?? []) {
      // LUKS targets: vdisk cannot write them yet, and each costs qemu-img a key-derivation benchmark
      const values = t === 'luks' ? [o.valid[0] ?? o.invalid[0]!] : [...o.valid, ...o.invalid];
      for (const v of values) for (const s of sample(r, ORDINARY, 2)) out.push(convertCase([s], t, `${o.name}=${v}`));
    }
  }
  return out;
}

/** Seeded pairs of target options (one source each). */
function pairCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const t of ['qcow2', 'vmdk', 'vhdx', 'vpc', 'vdi']) {
    const opts = CREATE_OPTIONS[t] ?? [];
    for (let i = 0; i < opts.length; i++) {
      for (let j = i + 1; j < opts.length; j++) {
        const a = opts[i]!;
        const b = opts[j]!;
        if (!a.valid.length || !b.valid.length) continue;
        out.push(convertCase([pick(r, ORDINARY)], t, `${a.name}=${pick(r, a.valid)},${b.name}=${pick(r, b.valid)}`));
      }
    }
  }
  return out;
}

/** Flags, each on three seeded sources to a seeded target (`targets` limits where a flag makes sense). */
const FLAGS: { flags: string[]; opts?: string; targets?: string[] }[] = [
  { flags: ['-c'], targets: ['qcow2', 'vmdk', 'raw', 'vpc'] },
  { flags: ['-c'], opts: 'subformat=streamOptimized', targets: ['vmdk'] },
  { flags: ['-c'], opts: 'compression_type=zstd', targets: ['qcow2'] },
  { flags: ['-c'], opts: 'cluster_size=4k', targets: ['qcow2'] },
  { flags: ['-c'], opts: 'preallocation=metadata', targets: ['qcow2'] },
  { flags: ['-c', '-C'], targets: ['qcow2'] },
  ...['0', '512', '4k', '64k', '1M', '513', '16M', '17M', 'abc'].map((s) => ({ flags: ['-S', s] })),
  ...['1', '4', '16', '0', '17', 'x'].map((m) => ({ flags: ['-m', m] })),
  { flags: ['-W'] },
  { flags: ['-m', '16', '-W'] },
  { flags: ['-C'] },
  { flags: ['-C', '-S', '0'] },
  { flags: ['--salvage'] },
  { flags: ['--salvage', '-C'] },
  ...['100M', '0', 'abc'].map((v) => ({ flags: ['-r', v] })),
  ...['none', 'writeback', 'writethrough', 'directsync', 'unsafe', 'bogus'].flatMap((c) => [{ flags: ['-t', c] }, { flags: ['-T', c] }]),
  { flags: ['-U'] },
  { flags: ['-p'] },
  { flags: ['-q'] },
  { flags: ['-p', '-q'] },
  { flags: ['--target-is-zero'] },
  { flags: ['--bitmaps'] },
  { flags: ['--skip-broken-bitmaps'] },
  { flags: ['-o', 'size=8M'] },
];

function flagCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const f of FLAGS) {
    for (const s of sample(r, ORDINARY, 3)) out.push(convertCase([s], pick(r, f.targets ?? VDISK_FORMATS), f.opts ?? '', f.flags));
  }
  return out;
}

/** -n into a target qemu-img made first: same, smaller and larger sizes, --target-is-zero, -o (refused). */
function noCreateCases(r: Rand): Case[] {
  const out: Case[] = [];
  const setups: [string, string][] = [['qcow2', '4M'], ['raw', '4M'], ['qcow2', '1M'], ['raw', '8M'], ['vmdk', '4M'], ['vdi', '8M'], ['qcow2', '64M']];
  const sources = ['r-data.raw', 'q-v3.qcow2', 'r-zero.raw', 'r-zdata.raw', 'q-zero.qcow2', 'c3-top.qcow2', 'v-sparse.vmdk', 'q-el2.qcow2'].map(fixture);
  for (const [t, size] of setups) {
    for (const s of sample(r, sources, 3)) {
      const setup = [qemuImg('create', '-q', '-f', t, `out.${ext(t)}`, size)];
      for (const flags of [['-n'], ['-n', '--target-is-zero'], ['-n', '-S', '0']]) out.push(convertCase([s], t, '', flags, true, setup));
    }
  }
  out.push(convertCase([fixture('r-data.raw')], 'qcow2', 'cluster_size=4k', ['-n'], true, [qemuImg('create', '-q', '-f', 'qcow2', 'out.qcow2', '4M')]));
  out.push(convertCase([fixture('r-data.raw')], 'qcow2', '', ['-n'], true, []));
  const ti = ['convert', '-n', '--target-image-opts', '-f', 'raw', 'r-data.raw', 'driver=qcow2,file.filename=out.qcow2'];
  out.push(makeCase('convert', ['r-data.raw'], [qemuImg('create', '-q', '-f', 'qcow2', 'out.qcow2', '4M'), img(...ti)], { hints: { 'out.qcow2': 'qcow2' } }));
  out.push(makeCase('convert', ['r-data.raw'], [img('convert', '--target-image-opts', '-f', 'raw', 'r-data.raw', 'driver=qcow2,file.filename=out.qcow2')]));
  out.push(makeCase('convert', ['q-v3.qcow2'], [img('convert', '--image-opts', '-O', 'raw', 'driver=qcow2,file.filename=q-v3.qcow2', 'out.raw')], { hints: { 'out.raw': 'raw' } }));
  out.push(makeCase('convert', ['q-v3.qcow2'], [img('convert', '--image-opts', '-O', 'raw', 'driver=qcow2,file.driver=file,file.filename=q-v3.qcow2,l2-cache-size=1M', 'out.raw')], { hints: { 'out.raw': 'raw' } }));
  out.push(makeCase('convert', ['q-v3.qcow2'], [img('convert', '-O', 'raw', 'json:{"driver":"qcow2","file":{"driver":"file","filename":"q-v3.qcow2"}}', 'out.raw')], { hints: { 'out.raw': 'raw' } }));
  return out;
}

/** Snapshots (-l), bitmaps (--bitmaps), backing files of the target (-B/-F, -o backing_file) and several sources. */
function specialCases(): Case[] {
  const out: Case[] = [];
  for (const snap of ['q-snap.qcow2', 'q-snap2.qcow2'].map(fixture)) {
    for (const l of ['s1', 's2', '1', '2', 'snapshot.id=1', 'snapshot.name=s2', 'snapshot.id=2,snapshot.name=s2', 'snapshot.id=1,snapshot.name=s2', 'nosuch', 'snapshot.bogus=1']) {
      for (const t of ['raw', 'qcow2']) out.push(convertCase([snap], t, '', ['-l', l]));
    }
  }
  out.push(convertCase([fixture('r-data.raw')], 'qcow2', '', ['-l', 's1']));
  const bm = fixture('q-bm.qcow2');
  for (const t of ['qcow2', 'raw', 'vmdk']) out.push(convertCase([bm], t, '', ['--bitmaps']));
  out.push(convertCase([bm], 'qcow2', '', ['--bitmaps', '--skip-broken-bitmaps']), convertCase([bm], 'qcow2', 'compat=0.10', ['--bitmaps']), convertCase([bm], 'qcow2', '', ['--bitmaps', '-n'], true, [qemuImg('create', '-q', '-f', 'qcow2', 'out.qcow2', '4M')]));
  const backings: [string, string][] = [['r-ones.raw', 'raw'], ['q-v3.qcow2', 'qcow2'], ['r-data.raw', 'raw'], ['c-short.raw', 'raw']];
  for (const src of ['r-zero.raw', 'r-data.raw', 'q-v3.qcow2', 'q-zero.qcow2', 'r-zdata.raw', 'c3-top.qcow2'].map(fixture)) {
    for (const [b, bf] of backings) {
      const inputs = [src, fixture(b === 'c-short.raw' ? 'c-over.qcow2' : b)];
      const name = (c: Case): Case => ({ ...c, inputs: inputs.map((f) => f.name) });
      out.push(name(convertCase([src], 'qcow2', '', ['-B', b, '-F', bf])));
      out.push(name(convertCase([src], 'qcow2', `backing_file=${b},backing_fmt=${bf}`)));
    }
  }
  out.push(convertCase([fixture('r-data.raw')], 'qcow2', '', ['-B', 'q-v3.qcow2']));
  out.push(convertCase([fixture('r-data.raw')], 'vmdk', '', ['-B', 'v-sparse.vmdk', '-F', 'vmdk']));
  out.push(convertCase([fixture('r-data.raw')], 'raw', '', ['-B', 'q-v3.qcow2', '-F', 'qcow2']));
  const multi: string[][] = [['r-data.raw', 'q-v3.qcow2'], ['r-odd.raw', 'r-5b.raw', 'q-odd.qcow2'], ['r-zero.raw', 'r-zero.raw'], ['q-snap.qcow2', 'r-data.raw'], ['r-empty.raw', 'r-data.raw']];
  for (const m of multi) for (const t of ['raw', 'qcow2', 'vmdk']) out.push(convertCase(m.map(fixture), t, '', [], false));
  out.push(convertCase(['r-data.raw', 'q-v3.qcow2'].map(fixture), 'qcow2', '', ['-B', 'r-ones.raw', '-F', 'raw'], false));
  out.push(convertCase(['q-snap.qcow2', 'q-snap.qcow2'].map(fixture), 'raw', '', ['-l', 's1'], false));
  return out;
}

/** Targets that are sources or their extents (the write lock must stop both tools). */
function sameFileCases(): Case[] {
  const c = (inputs: string[], argv: string[]): Case => makeCase('convert', inputs, [img(...argv)]);
  return [
    c(['v-flat.vmdk'], ['convert', '-O', 'raw', 'v-flat.vmdk', 'v-flat-flat.vmdk']),
    c(['r-data.raw'], ['convert', '-O', 'raw', 'r-data.raw', 'r-data.raw']),
    c(['q-df.qcow2'], ['convert', '-O', 'raw', 'q-df.qcow2', 'q-df.data']),
    c(['c3-top.qcow2'], ['convert', '-O', 'qcow2', 'c3-top.qcow2', 'c3-base.qcow2']),
    c(['v-2gs.vmdk'], ['convert', '-O', 'vmdk', 'v-2gs.vmdk', 'v-2gs-s001.vmdk']),
    c(['r-data.raw', 'q-v3.qcow2'], ['convert', '-O', 'qcow2', 'r-data.raw', 'q-v3.qcow2']),
  ];
}

/** Every convert case. */
export function convertCases(): Case[] {
  const r = seeded(201);
  return [...plainCases(), ...optionCases(r), ...pairCases(r), ...flagCases(r), ...noCreateCases(r), ...specialCases(), ...sameFileCases()];
}
