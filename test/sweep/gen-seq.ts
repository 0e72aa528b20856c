/**
 * Multi-step sequences (2–5 steps): snapshot, resize, amend, bitmap,
 * commit, rebase, check and convert chains with guest writes in between,
 * drawn by a seeded walk over what applies to the image at each point; plus
 * the sequences behind known bugs.
 */
import { img, makeCase, pick, qemuIo, seeded, tagged, type Rand } from './case-kit.js';
import type { Fixture } from './fixtures.js';
import { SLOW_REFCOUNT_CHANGE } from './gen-modify.js';
import type { Case, Step } from './types.js';

/** What the walk knows about the image (assuming every step succeeds, as it usually does). */
interface State {
  readonly file: string;
  readonly format: string;
  size: number;
  snaps: string[];
  bitmaps: string[];
  backing: boolean;
  next: number;
}

const K = 1024;
const M = K * K;

type Op = (r: Rand, s: State) => Step[] | undefined;

const hex = (r: Rand): string => `0x${(16 + Math.floor(r() * 224)).toString(16)}`;
const offset = (r: Rand, s: State): number => Math.floor(r() * Math.max(1, s.size - 64 * K) / 512) * 512 + (r() < 0.3 ? 17 : 0);

const write: Op = (r, s) => (s.size ? [qemuIo(s.format, s.file, `write -P ${hex(r)} ${offset(r, s)} ${pick(r, [512, 4096, 65536, 3000])}`)] : undefined);
const zero: Op = (r, s) => (s.size > 128 * K ? [qemuIo(s.format, s.file, `write -z ${Math.floor(offset(r, s) / 65536) * 65536} 64k`)] : undefined);
const discard: Op = (r, s) => (s.size > 128 * K ? [qemuIo(s.format, s.file, `discard ${Math.floor(offset(r, s) / 65536) * 65536} 64k`)] : undefined);
const grow: Op = (r, s) => {
  const by = pick(r, [64 * K, M, 3 * M, 1000448]);
  s.size += by;
  return [img('resize', s.file, `+${by}`)];
};
const shrink: Op = (r, s) => {
  const by = pick(r, [64 * K, M, 520 * K]);
  if (s.size <= by) return undefined;
  s.size -= by;
  return [img('resize', '--shrink', s.file, `-${by}`)];
};
const snapCreate: Op = (_r, s) => {
  const n = `t${s.next++}`;
  s.snaps.push(n);
  return [img('snapshot', '-c', n, s.file)];
};
const snapApply: Op = (r, s) => (s.snaps.length ? [img('snapshot', '-a', pick(r, s.snaps), s.file)] : undefined);
const snapDelete: Op = (r, s) => {
  if (!s.snaps.length) return undefined;
  const n = pick(r, s.snaps);
  s.snaps = s.snaps.filter((x) => x !== n);
  return [img('snapshot', '-d', n, s.file)];
};
const amend: Op = (r, s) => {
  const options = ['compat=0.10', 'compat=1.1', 'lazy_refcounts=on', 'lazy_refcounts=off', 'refcount_bits=1', 'refcount_bits=8', 'refcount_bits=64', 'refcount_bits=16', `size=${s.size + M}`];
  const o = pick(r, SLOW_REFCOUNT_CHANGE.has(s.file) ? options.filter((x) => !x.startsWith('refcount_bits')) : options);
  if (o.startsWith('size=')) s.size += M;
  return [img('amend', '-f', 'qcow2', '-o', o, s.file)];
};
const bitmapAdd: Op = (r, s) => {
  const n = `b${s.next++}`;
  s.bitmaps.push(n);
  return [img('bitmap', '--add', ...(r() < 0.3 ? ['-g', pick(r, ['512', '128k', '1M'])] : []), ...(r() < 0.2 ? ['--disable'] : []), s.file, n)];
};
const bitmapOther: Op = (r, s) => {
  if (!s.bitmaps.length) return undefined;
  const n = pick(r, s.bitmaps);
  const action = pick(r, ['--remove', '--clear', '--enable', '--disable', '--merge']);
  if (action === '--remove') s.bitmaps = s.bitmaps.filter((x) => x !== n);
  if (action === '--merge') return [img('bitmap', '--merge', n, s.file, pick(r, s.bitmaps))];
  return [img('bitmap', action, s.file, n)];
};
const repair: Op = (r, s) => [img('check', '-r', pick(r, ['all', 'leaks']), s.file)];
const commit: Op = (r, s) => (s.backing ? [img('commit', ...(r() < 0.3 ? ['-d'] : []), s.file)] : undefined);
const unbase: Op = (r, s) => {
  if (!s.backing) return undefined;
  s.backing = false;
  return [img('rebase', ...(r() < 0.3 ? ['-u'] : []), '-b', '', s.file)];
};
const convert: Op = (r, s) => [img('convert', '-O', pick(r, ['qcow2', 'raw', 'vmdk']), ...(r() < 0.3 ? ['-c'] : []), s.file, `copy${s.next++}.img`)];
const look: Op = (r, s) => [img(pick(r, ['info', 'map']), '--output=json', s.file)];

const QCOW2_OPS: Op[] = [write, write, zero, discard, grow, shrink, snapCreate, snapCreate, snapApply, snapDelete, amend, bitmapAdd, bitmapOther, repair, commit, unbase, convert, look];
const RAW_OPS: Op[] = [write, zero, discard, grow, shrink, convert, look];
const OTHER_OPS: Op[] = [write, zero, convert, look, repair, grow];

function walk(f: Fixture, r: Rand, length: number): Step[] {
  const s: State = { file: f.name, format: f.format, size: f.size, snaps: f.tags.includes('snapshots') ? ['s1', 's2'] : [], bitmaps: f.tags.includes('bitmaps') ? ['bm-on', 'bm-off'] : [], backing: f.tags.includes('backing'), next: 1 };
  const ops = f.format === 'qcow2' ? QCOW2_OPS : f.format === 'raw' ? RAW_OPS : OTHER_OPS;
  const steps: Step[] = [];
  for (let tries = 0; steps.length < length && tries < 50; tries++) steps.push(...(pick(r, ops)(r, s) ?? []));
  // a sequence of guest writes only exercises qemu-io: end on a compared command
  if (!steps.some((x) => x.tool === 'img')) steps.push(img('check', s.file));
  return steps;
}

function randomSequences(count: number): Case[] {
  const starts = tagged('writable').filter((f) => !f.tags.includes('big') && !f.tags.includes('empty'));
  const weighted = [...starts, ...starts.filter((f) => f.format === 'qcow2'), ...starts.filter((f) => f.format === 'qcow2')];
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const r = seeded(7000 + i);
    const f = pick(r, weighted);
    const steps = walk(f, r, 2 + Math.floor(r() * 4));
    out.push(makeCase(`seq:${steps.find((x) => x.tool === 'img')!.argv[0]}`, [f.name], steps));
  }
  return out;
}

/** The sequences behind known bugs, kept explicit so the sweep always runs them. */
function knownSequences(): Case[] {
  const c = (inputs: string[], steps: Step[]): Case => makeCase(`seq:${steps.find((x) => x.tool === 'img')!.argv[0]}`, inputs, steps);
  return [
    c(['c-over.qcow2'], [img('resize', '--shrink', 'c-over.qcow2', '520k'), img('resize', 'c-over.qcow2', '567k')]),
    c(['c-over.qcow2'], [img('resize', '--shrink', 'c-over.qcow2', '520k'), img('resize', 'c-over.qcow2', '2M')]),
    c(['c-el2.qcow2'], [img('resize', '--shrink', 'c-el2.qcow2', '1050000'), img('resize', 'c-el2.qcow2', '2M')]),
    c(['c3-top.qcow2'], [img('resize', '--shrink', 'c3-top.qcow2', '1M'), img('resize', 'c3-top.qcow2', '4M')]),
    c(['q-bm.qcow2'], [img('snapshot', '-c', 'x', 'q-bm.qcow2'), qemuIo('qcow2', 'q-bm.qcow2', 'write -P 0x31 2M 64k'), img('snapshot', '-a', 'x', 'q-bm.qcow2')]),
    c(['q-snap2.qcow2'], [img('resize', 'q-snap2.qcow2', '+1M'), img('snapshot', '-a', 's1', 'q-snap2.qcow2')]),
    c(['q-snap2.qcow2'], [img('amend', '-o', 'size=8M', 'q-snap2.qcow2'), img('snapshot', '-l', 'q-snap2.qcow2')]),
    c(['q-bm.qcow2'], [img('resize', 'q-bm.qcow2', '+1M'), qemuIo('qcow2', 'q-bm.qcow2', 'write -P 0x32 4M 64k')]),
    c(['q-bm.qcow2'], [img('amend', '-o', 'size=8M', 'q-bm.qcow2')]),
    c(['q-dirty.qcow2'], [img('check', '-r', 'leaks', 'q-dirty.qcow2'), img('info', '--output=json', 'q-dirty.qcow2')]),
    c(['q-dfr.qcow2'], [img('resize', 'q-dfr.qcow2', '+1M'), img('map', '--output=json', 'q-dfr.qcow2')]),
    c(['q-dfr.qcow2'], [img('amend', '-o', 'size=8M', 'q-dfr.qcow2'), img('map', '--output=json', 'q-dfr.qcow2')]),
    c(['q-snap2.qcow2'], [img('amend', '-o', 'compat=1.1', 'q-snap2.qcow2'), img('snapshot', '-a', 's1', 'q-snap2.qcow2')]),
    c(['q-el2.qcow2'], [img('resize', '--preallocation=metadata', 'q-el2.qcow2', '+1M'), img('map', '--output=json', 'q-el2.qcow2')]),
  ];
}

/** Every sequence case. */
export function sequenceCases(): Case[] {
  return [...knownSequences(), ...randomSequences(800)];
}
