/**
 * commit, rebase and amend against qemu-img on 3-layer chains written with
 * qemu-io (pattern writes, zero writes, discards at scattered offsets).
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { amend } from '../../src/jobs/amend.js';
import { commit } from '../../src/jobs/commit.js';
import { rebase } from '../../src/jobs/rebase.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const K = 1024;
const M = 1024 * K;
const at = (f: string): string => `${cwd}/${f}`;

/** base ← mid ← top, all qcow2, scattered writes; the top may be larger than the base. */
function chain(prefix: string, seed: number, opts: { cluster?: number; topSize?: string } = {}): void {
  const cl = `cluster_size=${opts.cluster ?? 65536}`;
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', cl, `${prefix}-base`, '8M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', cl, '-b', `${prefix}-base`, '-F', 'qcow2', `${prefix}-mid`], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', cl, '-b', `${prefix}-mid`, '-F', 'qcow2', `${prefix}-top`, ...(opts.topSize ? [opts.topSize] : [])], { cwd });
  const next = rng(seed);
  for (const layer of [`${prefix}-base`, `${prefix}-mid`, `${prefix}-top`]) {
    const span = layer.endsWith('top') && opts.topSize ? 11 * M : 7 * M;
    const cmds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const off = Math.floor((next() * span) / (4 * K)) * 4 * K;
      const len = (1 + Math.floor(next() * 48)) * 4 * K;
      const r = next();
      if (r < 0.6) cmds.push(`write -P ${1 + Math.floor(next() * 250)} ${off} ${len}`);
      else if (r < 0.8) cmds.push(`write -z ${off} ${len}`);
      else cmds.push(`discard ${off} ${len}`);
    }
    qemuIo(at(layer), cmds, 'qcow2');
  }
}

/** The guest view of `file` as a raw image (the reference to compare against). */
function snapshotView(file: string, raw: string): void {
  qemuImgOk(['convert', '-O', 'raw', file, raw], { cwd });
}

function identical(a: string, b: string, fmtB = 'raw'): void {
  const r = qemuImg(['compare', '-F', fmtB, a, b], { cwd });
  assert.equal(r.status, 0, `${a} vs ${b}: ${r.stdout}${r.stderr}`);
}

function clean(file: string, leaksOk = false): void {
  const r = qemuImg(['check', file], { cwd });
  assert.ok(r.status === 0 || (leaksOk && r.status === 3), `check ${file}: ${r.stdout}${r.stderr}`);
}

function backingOf(file: string): string | undefined {
  const j = JSON.parse(qemuImgOk(['info', '--output=json', '-U', file], { cwd })) as { 'backing-filename'?: string };
  return j['backing-filename'];
}

/** True when `file` allocates nothing itself (reads through). */
function empty(file: string): boolean {
  const map = JSON.parse(qemuImgOk(['map', '--output=json', file], { cwd })) as { depth: number; present: boolean }[];
  return map.every((e) => e.depth > 0 || !e.present);
}

describe('commit equals qemu-img', () => {
  it('commit top: the backing file reads as top did, top is emptied', (t) => {
    if (!requireQemu(t)) return;
    chain('c1', 11);
    snapshotView('c1-top', 'c1-view.raw');
    const r = vdisk(['commit', 'c1-top'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Image committed.\n');
    identical('c1-mid', 'c1-view.raw');
    clean('c1-mid');
    clean('c1-top');
    assert.ok(empty('c1-top'));
    identical('c1-top', 'c1-view.raw');
  });

  it('commit -d keeps the top data', (t) => {
    if (!requireQemu(t)) return;
    chain('c2', 12);
    snapshotView('c2-top', 'c2-view.raw');
    const before = qemuImgOk(['map', '--output=json', 'c2-top'], { cwd });
    assert.equal(vdisk(['commit', '-q', '-d', 'c2-top'], { cwd }).status, 0);
    identical('c2-mid', 'c2-view.raw');
    assert.equal(qemuImgOk(['map', '--output=json', 'c2-top'], { cwd }), before);
    clean('c2-mid');
  });

  it('commit -b base (two levels down) takes both upper layers and grows the base', (t) => {
    if (!requireQemu(t)) return;
    chain('c3', 13, { topSize: '12M' });
    snapshotView('c3-top', 'c3-view.raw');
    const r = vdisk(['commit', '-b', 'c3-base', 'c3-top'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    identical('c3-base', 'c3-view.raw');
    clean('c3-base');
    assert.equal((JSON.parse(qemuImgOk(['info', '--output=json', 'c3-base'], { cwd })) as { 'virtual-size': number })['virtual-size'], 12 * M);
    identical('c3-top', 'c3-view.raw'); // -b implies -d: the top still reads the same
  });

  it('errors as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    chain('c4', 14);
    for (const args of [['commit', 'c4-base'], ['commit', '-b', 'nothere', 'c4-top'], ['commit', '-r', 'abc', 'c4-top'], ['commit'], ['commit', '-t', 'bogus', 'c4-top']]) {
      const ours = vdisk(args, { cwd });
      const theirs = qemuImg(args, { cwd });
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status, args.join(' '));
    }
  });

  it('an aborted commit leaves every image consistent and the top view unchanged', async (t) => {
    if (!requireQemu(t)) return;
    chain('c5', 15);
    snapshotView('c5-top', 'c5-view.raw');
    for (const delay of [0, 5, 20]) {
      const ac = new AbortController();
      const job = commit(at('c5-top'), { signal: ac.signal, rateLimit: 2 * M });
      setTimeout(() => ac.abort(), delay);
      await job.then(
        () => undefined,
        (err: unknown) => assert.equal((err as { code?: string }).code, 'EABORTED'),
      );
      for (const f of ['c5-base', 'c5-mid', 'c5-top']) clean(f, true);
      identical('c5-top', 'c5-view.raw');
    }
    await commit(at('c5-top')); // re-runnable
    identical('c5-mid', 'c5-view.raw');
  });
});

describe('rebase equals qemu-img', () => {
  it('safe rebase onto base keeps the view and names the new backing file', (t) => {
    if (!requireQemu(t)) return;
    chain('r1', 21);
    snapshotView('r1-top', 'r1-view.raw');
    const r = vdisk(['rebase', '-F', 'qcow2', '-b', 'r1-base', 'r1-top'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(backingOf('r1-top'), 'r1-base');
    identical('r1-top', 'r1-view.raw');
    clean('r1-top');
  });

  it('without -F: qemu-img 7.2 copies, then refuses to change the header', (t) => {
    if (!requireQemu(t)) return;
    chain('r2', 22);
    chain('r2q', 22);
    snapshotView('r2-top', 'r2-view.raw');
    const ours = vdisk(['rebase', '-b', 'r2-base', 'r2-top'], { cwd });
    const theirs = qemuImg(['rebase', '-b', 'r2q-base', 'r2q-top'], { cwd });
    assert.equal(ours.stderr, asVdisk(theirs.stderr).replaceAll('r2q-', 'r2-'));
    assert.equal(ours.status, 1);
    assert.equal(theirs.status, 1);
    assert.equal(backingOf('r2-top'), 'r2-mid');
    identical('r2-top', 'r2-view.raw');
    assert.equal(qemuImgOk(['map', '--output=json', 'r2-top'], { cwd }), qemuImgOk(['map', '--output=json', 'r2q-top'], { cwd }).replaceAll('r2q-', 'r2-'));
  });

  it('-b "" makes the image standalone with the same content; -u only changes the name', (t) => {
    if (!requireQemu(t)) return;
    chain('r3', 23);
    snapshotView('r3-top', 'r3-view.raw');
    assert.equal(vdisk(['rebase', '-b', '', 'r3-top'], { cwd }).status, 0);
    assert.equal(backingOf('r3-top'), undefined);
    identical('r3-top', 'r3-view.raw');
    clean('r3-top');
    const before = readFileSync(at('r3-top'));
    assert.equal(vdisk(['rebase', '-u', '-b', 'r3-base', '-F', 'qcow2', 'r3-top'], { cwd }).status, 0);
    assert.equal(backingOf('r3-top'), 'r3-base');
    const afterBytes = readFileSync(at('r3-top'));
    assert.equal(afterBytes.length, before.length);
    assert.ok(afterBytes.subarray(65536).equals(before.subarray(65536)), 'only the header cluster changes');
  });

  it('the diff use: an overlay rebased onto an unrelated image keeps its view; relative names', (t) => {
    if (!requireQemu(t)) return;
    chain('r4', 24);
    chain('r5', 25);
    snapshotView('r4-top', 'r4-view.raw');
    // qemu-img's manual: a diff of r4-top against r5-mid, stored in r4-top
    const r = vdisk(['rebase', '-F', 'qcow2', '-b', 'r5-mid', at('r4-top')], { cwd: '/' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(backingOf('r4-top'), 'r5-mid');
    identical('r4-top', 'r4-view.raw');
    clean('r4-top');
  });

  it('-c compresses the copied clusters (content checked)', async (t) => {
    if (!requireQemu(t)) return;
    chain('r6', 26);
    snapshotView('r6-top', 'r6-view.raw');
    await rebase(at('r6-top'), '', { compress: true });
    identical('r6-top', 'r6-view.raw');
    clean('r6-top');
    const check = JSON.parse(qemuImgOk(['check', '--output=json', 'r6-top'], { cwd })) as { 'compressed-clusters'?: number };
    assert.ok((check['compressed-clusters'] ?? 0) > 0);
  });

  it('an aborted rebase keeps the view and the old backing file', async (t) => {
    if (!requireQemu(t)) return;
    chain('r7', 27);
    snapshotView('r7-top', 'r7-view.raw');
    for (const delay of [0, 3, 10]) {
      const ac = new AbortController();
      const job = rebase(at('r7-top'), 'r7-base', { backingFormat: 'qcow2', signal: ac.signal });
      setTimeout(() => ac.abort(), delay);
      const done = await job.then(
        () => true,
        () => false,
      );
      clean('r7-top', true);
      identical('r7-top', 'r7-view.raw');
      if (done) break;
      assert.equal(backingOf('r7-top'), 'r7-mid');
    }
  });
});

describe('amend equals qemu-img', () => {
  const info = (f: string): string => qemuImgOk(['info', '--output=json', f], { cwd }).replace(/"(filename|actual-size)": [^\n]*\n/g, '');
  /** check's JSON without the fields that follow where metadata was placed (layout, not consistency). */
  const check = (f: string): Record<string, unknown> => {
    const j = JSON.parse(qemuImgOk(['check', '--output=json', f], { cwd })) as Record<string, unknown>;
    for (const k of ['filename', 'image-end-offset', 'fragmented-clusters']) delete j[k];
    return j;
  };

  for (const [name, steps] of [
    ['compat 1.1 → 0.10 → 1.1', ['compat=0.10', 'compat=1.1']],
    ['refcount_bits 16 → 64 → 1', ['refcount_bits=64', 'refcount_bits=1']],
    ['lazy_refcounts on → off', ['lazy_refcounts=on', 'lazy_refcounts=off']],
    ['backing_file unchanged, size, refcount 8 + downgrade', ['backing_file=a1-base,backing_fmt=qcow2', 'size=12M', 'refcount_bits=8', 'refcount_bits=16,compat=0.10']],
  ] as const) {
    it(name, (t) => {
      if (!requireQemu(t)) return;
      if (name.startsWith('compat')) chain('a1', 31);
      copyFileSync(at('a1-mid'), at('a-ours'));
      copyFileSync(at('a1-mid'), at('a-theirs'));
      for (const o of steps) {
        const ours = vdisk(['amend', '-o', o, 'a-ours'], { cwd });
        const theirs = qemuImg(['amend', '-o', o, 'a-theirs'], { cwd });
        assert.equal(ours.stderr, asVdisk(theirs.stderr), o);
        assert.equal(ours.status, theirs.status, o);
        assert.equal(info('a-ours'), info('a-theirs').replaceAll('a-theirs', 'a-ours'), o);
        assert.deepEqual(check('a-ours'), check('a-theirs'), o);
        identical('a-ours', 'a-theirs', 'qcow2');
      }
    });
  }

  it('errors as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'e.qcow2', '1M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'e2.qcow2', '1M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'raw', 'e.raw', '1M'], { cwd });
    for (const args of [
      ['amend', '-o', 'cluster_size=4k', 'e.qcow2'],
      ['amend', '-o', 'compat=0.9', 'e.qcow2'],
      ['amend', '-o', 'foo=1', 'e.qcow2'],
      ['amend', '-f', 'raw', '-o', 'size=2M', 'e.raw'],
      ['amend', 'e.qcow2'],
      ['amend', '-o', 'refcount_bits=3', 'e.qcow2'],
      ['amend', '-o', 'compat=0.10,refcount_bits=8', 'e.qcow2'],
      ['amend', '-o', 'compat=0.10,lazy_refcounts=on', 'e.qcow2'],
      ['amend', '-o', 'data_file=x', 'e.qcow2'],
      ['amend', '-o', 'data_file_raw=on', 'e.qcow2'],
      ['amend', '-o', 'backing_file=x', 'e.qcow2'],
      ['amend', '-o', 'compat=0.10', 'e2.qcow2'],
      ['amend', '-f', 'qcow2', '-o', 'help', 'nothere.qcow2'],
      ['amend', '-o', 'help', 'e.qcow2'],
    ]) {
      const ours = vdisk(args, { cwd });
      const theirs = qemuImg(args, { cwd });
      assert.equal(ours.stdout, theirs.stdout, args.join(' '));
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status, args.join(' '));
    }
  });

  it('API: amend with an options object', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'api.qcow2', '1M'], { cwd });
    const r = await amend(at('api.qcow2'), { options: { refcount_bits: 32 } });
    assert.equal(r.options.get('refcount_bits'), 32);
    assert.match(qemuImgOk(['info', 'api.qcow2'], { cwd }), /refcount bits: 32/);
  });
});
