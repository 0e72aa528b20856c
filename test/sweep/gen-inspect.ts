/**
 * The read-only commands: info, check (with repair), map, measure and
 * compare, on every fixture, with each of their options (valid and invalid).
 */
import { ALL, img, makeCase, pick, sample, seeded, without, type Rand } from './case-kit.js';
import { fixture, fixtureOf, SECRET, type Fixture } from './fixtures.js';
import { CREATE_OPTIONS } from './options.js';
import type { Case } from './types.js';

const one = (command: string, f: Fixture, argv: string[]): Case => makeCase(command, [f.name], [img(command, ...argv)]);
const ORDINARY = without(ALL, 'big', 'secret', 'unsupported');

function infoCases(r: Rand): Case[] {
  const out: Case[] = [];
  const each = [[], ['--output=json'], ['--output', 'human'], ['--backing-chain'], ['--backing-chain', '--output=json'], ['-U']];
  for (const f of ALL) {
    for (const a of each) out.push(one('info', f, [...a, f.name]));
    out.push(one('info', f, ['-f', f.format, '--output=json', f.name]));
    out.push(one('info', f, ['-f', f.format === 'raw' ? 'qcow2' : 'raw', f.name]));
  }
  for (const f of sample(r, ALL, 8)) {
    out.push(one('info', f, ['--output=bogus', f.name]));
    out.push(one('info', f, ['--image-opts', `driver=${f.format},file.filename=${f.name}`]));
    out.push(one('info', f, ['--image-opts', '-f', f.format, f.name]));
  }
  out.push(makeCase('info', [], [img('info', 'nosuch.qcow2')]), makeCase('info', [], [img('info')]));
  out.push(makeCase('info', ['q-enc.qcow2'], [img('info', ...SECRET, '--image-opts', 'driver=qcow2,encrypt.key-secret=sec0,file.filename=q-enc.qcow2')]));
  out.push(makeCase('info', ['q-v3.qcow2'], [img('info', 'json:{"driver":"qcow2","file":{"driver":"file","filename":"q-v3.qcow2"}}')]));
  out.push(makeCase('info', [], [img('info', '--image-opts', 'driver=null-co,size=1M')]));
  out.push(makeCase('info', ['x-dyn.vhdx'], [img('info', '--object', 'bogus,id=x', 'x-dyn.vhdx')]));
  return out;
}

function checkCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const f of ALL) for (const a of [[], ['--output=json'], ['-r', 'leaks'], ['-r', 'all']]) out.push(one('check', f, [...a, f.name]));
  const flags = [['-q'], ['-U'], ['-T', 'none'], ['-T', 'bogus'], ['-r', 'bogus'], ['-U', '-r', 'all'], ['--output=json', '-r', 'all'], ['-q', '-r', 'leaks'], ['--output=bogus']];
  for (const a of flags) for (const f of sample(r, ALL, 4)) out.push(one('check', f, [...a, '-f', f.format, f.name]));
  for (const name of ['q-dirty.qcow2', 'q-lazy.qcow2', 'q-zlib.qcow2', 'v-stream.vmdk', 'x-dyn.vhdx', 'd-dyn.vdi']) {
    out.push(one('check', fixture(name), ['-r', 'leaks', '--output=json', name]), one('check', fixture(name), ['-q', '-r', 'all', name]));
  }
  return out;
}

function mapCases(r: Rand): Case[] {
  const out: Case[] = [];
  for (const f of ALL) for (const a of [[], ['--output=json']]) out.push(one('map', f, [...a, f.name]));
  const ranges = [
    ['-s', '64k'], ['-l', '1M'], ['-s', '1000', '-l', '5000'], ['--start-offset=2M', '--max-length=1M'], ['-s', '5M'], ['-l', '0'],
    ['-s', '-1'], ['-l', 'abc'], ['-U'], ['--output=bogus'], ['-s', '4M'], ['-s', '1T'], ['--max-length=1'],
  ];
  for (const a of ranges) for (const f of sample(r, ALL, 4)) out.push(one('map', f, ['--output=json', ...a, '-f', f.format, f.name]));
  for (const f of sample(r, ORDINARY, 6)) out.push(one('map', f, ['-s', '1M', '-l', '1M', f.name]));
  return out;
}

function measureCases(r: Rand): Case[] {
  const out: Case[] = [];
  const m = (inputs: string[], argv: string[]): Case => makeCase('measure', inputs, [img('measure', ...argv)]);
  for (const size of ['0', '1', '511', '512', '1000001', '4M', '1T', '2T', '8E', '16E', '-1', 'abc']) {
    for (const t of ['raw', 'qcow2']) for (const o of [[], ['--output=json']]) out.push(m([], [...o, '--size', size, '-O', t]));
  }
  for (const t of ['vmdk', 'vpc', 'vdi', 'vhdx', 'luks', 'bogus']) out.push(m([], ['--size', '1G', '-O', t]));
  for (const o of CREATE_OPTIONS['qcow2'] ?? []) {
    for (const v of [...o.valid, ...o.invalid]) out.push(m([], ['--output=json', '--size', pick(r, ['1G', '4M', '2T']), '-O', 'qcow2', '-o', `${o.name}=${v}`]));
  }
  for (const v of ['off', 'falloc', 'full', 'metadata']) out.push(m([], ['--size', '1G', '-O', 'raw', '-o', `preallocation=${v}`]));
  for (const o of ['data_file=x.data', 'data_file=x.data,data_file_raw=on', 'backing_file=q-v3.qcow2,backing_fmt=qcow2', 'extended_l2=on,cluster_size=2M,preallocation=metadata']) {
    out.push(m([], ['--output=json', '--size', '1G', '-O', 'qcow2', '-o', o]));
  }
  for (const f of ALL) {
    out.push(m([f.name], ['-O', 'qcow2', f.name]));
    out.push(m([f.name], ['--output=json', '-f', f.format, '-O', 'raw', f.name]));
  }
  for (const f of sample(r, ORDINARY, 8)) out.push(m([f.name], ['-O', 'qcow2', '-o', pick(r, ['cluster_size=4k', 'preallocation=full', 'extended_l2=on', 'compat=0.10', 'refcount_bits=1']), f.name]));
  for (const l of ['s1', 'snapshot.id=2', 'nosuch']) out.push(m(['q-snap.qcow2'], ['-l', l, '-O', 'qcow2', 'q-snap.qcow2']));
  out.push(m(['q-bm.qcow2'], ['--output=json', '-O', 'qcow2', 'q-bm.qcow2']));
  out.push(m(['q-v3.qcow2'], ['--size', '1G', 'q-v3.qcow2']));
  out.push(m([], ['-O', 'qcow2']));
  out.push(m([], ['--size', '1G', '-O', 'qcow2', '-o', 'cluster_size=2M,extended_l2=on']));
  return out;
}

function compareCases(r: Rand): Case[] {
  const out: Case[] = [];
  const c = (a: Fixture, b: Fixture, flags: string[] = []): Case => makeCase('compare', [a.name, b.name], [img('compare', ...flags, a.name, b.name)]);
  const list = without(ALL, 'secret');
  for (let i = 0; i < 120; i++) {
    const [a, b] = sample(r, list, 2) as [Fixture, Fixture];
    out.push(c(a, b, r() < 0.5 ? ['-f', a.format, '-F', b.format] : []));
  }
  const flags = [['-s'], ['-q'], ['-p'], ['-U'], ['-T', 'none'], ['-s', '-q']];
  for (const f of flags) for (let i = 0; i < 4; i++) {
    const [a, b] = sample(r, ORDINARY, 2) as [Fixture, Fixture];
    out.push(c(a, b, [...f, '-f', a.format, '-F', b.format]));
  }
  const pairs = [['r-data.raw', 'q-v3.qcow2'], ['r-zero.raw', 'q-empty.qcow2'], ['r-zero.raw', 'r-zdata.raw'], ['r-odd.raw', 'q-odd.qcow2'], ['q-snap.qcow2', 'q-v3.qcow2'], ['c3-top.qcow2', 'c3-mid.qcow2'], ['r-data.raw', 'r-1t.raw']];
  for (const [a, b] of pairs) {
    for (const f of [[], ['-s']]) out.push(makeCase('compare', [fixtureOf(a!).name, fixtureOf(b!).name], [img('compare', ...f, a!, b!)]));
  }
  out.push(makeCase('compare', ['r-data.raw'], [img('compare', 'r-data.raw')]));
  out.push(makeCase('compare', ['r-data.raw'], [img('compare', 'r-data.raw', 'nosuch.raw')]));
  out.push(c(fixture('q-v3.qcow2'), fixture('r-data.raw'), ['-f', 'raw', '-F', 'qcow2']));
  return out;
}

/** Every case of the read-only commands. */
export function inspectCases(): Case[] {
  const r = seeded(301);
  return [...infoCases(r), ...checkCases(r), ...mapCases(r), ...measureCases(r), ...compareCases(r)];
}
