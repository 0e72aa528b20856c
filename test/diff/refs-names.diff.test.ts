/**
 * File names that are not UTF-8 pass through as bytes, as
 * qemu-img passes them: on the command line of every command, in what is
 * printed (human output prints the bytes, JSON output \uFFFD as qemu's JSON
 * writer does), and in names recorded inside images (backing files, VMDK
 * extents). Each step runs qemu-img in one directory and vdisk in a twin.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { VDISK_BIN } from '../helpers/cli.js';
import { hasQemu, hasQemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

type Word = string | Buffer;

const dir = tmpDir('vdisk-refs-names-');
after(() => dir.cleanup());

/** A word as bash's ANSI-C quoting spells its exact bytes (spawn arguments can only be UTF-8). */
function quote(word: Word): string {
  const bytes = typeof word === 'string' ? Buffer.from(word) : word;
  return `$'${[...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
}

interface Run {
  readonly status: number;
  /** Output as latin1 text: one character per byte, so the bytes compare exactly. */
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` in `cwd` with each word's exact bytes on the command line. */
function runBytes(argv: readonly Word[], cwd: string): Run {
  const r = spawnSync('bash', ['-c', `exec ${argv.map(quote).join(' ')}`], { cwd, encoding: 'buffer', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

const cat = (...parts: Word[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
const qdir = join(dir.path, 'q');
const vdir = join(dir.path, 'v');

/** Runs `qemu-img args` in the qemu twin and `vdisk args` in the vdisk twin; asserts they agree byte for byte. */
function same(args: readonly Word[]): Run {
  const q = runBytes(['qemu-img', ...args], qdir);
  const v = runBytes([process.execPath, VDISK_BIN, ...args], vdir);
  const shown = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a.toString('latin1')))).join(' ');
  assert.equal(v.stderr, q.stderr.replaceAll('qemu-img: ', 'vdisk: '), `stderr of ${shown}`);
  assert.equal(v.stdout, q.stdout, `stdout of ${shown}`);
  assert.equal(v.status, q.status, `status of ${shown}`);
  return v;
}

/** The twin directories' listings, as bytes. */
function listing(d: string): string[] {
  return readdirSync(d, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
}

const B = cat('b', Buffer.from([0xfe]), '.qcow2');
const T = cat('t', Buffer.from([0xff]), '.qcow2');
/** An invalid UTF-8 sequence that qemu's JSON writer turns into one \uFFFD (a 3-byte lead with one continuation). */
const E = cat(Buffer.from([0xc3, 0xa9, 0xe2, 0x82]), '.qcow2');
const N = cat('n', Buffer.from([0x80]), '.qcow2');
const O = cat('o', Buffer.from([0xfc]), '.raw');

before(() => {
  if (!hasQemu || !hasQemuIo) return;
  for (const d of [qdir, vdir]) {
    mkdirSync(d);
    const ok = (argv: Word[]): void => assert.equal(runBytes(argv, d).status, 0, argv.join(' '));
    ok(['qemu-img', 'create', '-q', '-f', 'qcow2', B, '1M']);
    ok(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x61 0 64k', B]);
    ok(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', B, '-F', 'qcow2', T]);
    ok(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x62 64k 64k', T]);
    ok(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', T, '-F', 'qcow2', E]);
  }
});

describe('names that are not UTF-8 pass through every command as bytes', () => {
  it('info (human, JSON, backing chain) prints the names inside and outside the image as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    assert.match(same(['info', T]).stdout, /^image: t\xff\.qcow2\nfile format: qcow2\n[^]*backing file: b\xfe\.qcow2\n/);
    assert.match(same(['info', '--output=json', T]).stdout, /"backing-filename": "b\\uFFFD\.qcow2"/);
    same(['info', '--backing-chain', E]);
    assert.match(same(['info', '--output=json', '--backing-chain', E]).stdout, /"filename": "\\u00E9\\uFFFD\.qcow2"/);
  });

  it('a missing name is reported with its bytes', (t) => {
    if (!requireQemu(t)) return;
    same(['info', cat('missing', Buffer.from([0xff]), '.qcow2')]);
  });

  it('json: names and --image-opts take the bytes as qemu-img does (its JSON refuses what is not UTF-8)', (t) => {
    if (!requireQemu(t)) return;
    same(['info', '--image-opts', cat('driver=qcow2,file.filename=', T)]);
    for (const bad of [0xfd, 0xc3, 0xff]) same(['info', cat('json:{"file.filename":"x', Buffer.from([bad]), '.qcow2"}')]);
    same(['info', cat('json:{"file.filename":"', T, '", ', Buffer.from([0xfe]), '}')]);
  });

  it('check, map, compare, measure and bench read the files the bytes name', (t) => {
    if (!requireQemu(t)) return;
    same(['check', T]);
    same(['check', '--output=json', T]);
    same(['map', T]);
    same(['map', '--output=json', E]);
    same(['compare', T, B]);
    same(['measure', '-O', 'qcow2', T]);
    // bench prints timings: only that both read the file.
    assert.equal(runBytes([process.execPath, VDISK_BIN, 'bench', '-c', '4', T], vdir).status, runBytes(['qemu-img', 'bench', '-c', '4', T], qdir).status);
  });

  it('create and convert write the files the bytes name', (t) => {
    if (!requireQemu(t)) return;
    assert.match(same(['create', '-f', 'qcow2', '-b', B, '-F', 'qcow2', N, '1M']).stdout, /^Formatting 'n\x80\.qcow2', fmt=qcow2 .*backing_file=b\xfe\.qcow2 /);
    same(['convert', '-O', 'raw', T, O]);
    same(['dd', '-O', 'raw', cat('if=', T), cat('of=', O, '.dd'), 'bs=64k']);
    assert.deepEqual(listing(vdir), listing(qdir));
    for (const name of [O, cat(O, '.dd')]) {
      const find = (d: string): Buffer => {
        const hit = readdirSync(d, { encoding: 'buffer' }).find((n) => n.equals(name));
        assert.ok(hit, `${name.toString('latin1')} in ${d}`);
        return readFileSync(Buffer.concat([Buffer.from(d + '/'), hit]));
      };
      assert.ok(find(vdir).equals(find(qdir)));
    }
  });

  it('a gzip-wrapped upload whose name is not UTF-8 is inflated and converted (vdisk only: qemu-img does not unwrap)', (t) => {
    if (!requireQemu(t)) return;
    const at = (d: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(d + '/'), name]);
    writeFileSync(at(vdir, cat(B, '.gz')), gzipSync(readFileSync(at(vdir, B))));
    const out = cat('z', Buffer.from([0xf9]), '.raw');
    assert.equal(runBytes(['qemu-img', 'convert', '-O', 'raw', B, out], qdir).status, 0);
    const v = runBytes([process.execPath, VDISK_BIN, 'convert', '-O', 'raw', cat(B, '.gz'), out], vdir);
    assert.equal(v.stderr, '');
    assert.equal(v.status, 0);
    assert.ok(readFileSync(at(vdir, out)).equals(readFileSync(at(qdir, out))));
    writeFileSync(at(qdir, cat(B, '.gz')), ''); // the twins' listings stay alike
  });

  it('snapshot, resize, amend, bitmap, rebase and commit change the files the bytes name', (t) => {
    if (!requireQemu(t)) return;
    same(['snapshot', '-c', 'one', N]);
    same(['resize', N, '2M']);
    same(['amend', '-f', 'qcow2', '-o', 'lazy_refcounts=on', N]);
    same(['bitmap', '--add', N, 'bm']);
    same(['rebase', '-u', '-f', 'qcow2', '-b', T, '-F', 'qcow2', N]);
    same(['compare', N, T]);
    same(['commit', E]);
    same(['compare', T, E]);
    assert.deepEqual(listing(vdir), listing(qdir));
  });

  it('names inside images that are not UTF-8 are created and followed: VMDK extents, qcow2 data files', (t) => {
    if (!requireQemu(t)) return;
    const M = cat('m', Buffer.from([0xfa]), '.vmdk');
    same(['create', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', M, '1M']);
    const U = cat(Buffer.from([0xc3, 0xa9]), '.vmdk'); // UTF-8: an extent name read as Latin-1 named another file
    same(['create', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', U, '1M']);
    same(['compare', M, U]);
    same(['convert', '-O', 'raw', U, cat(U, '.raw')]);
    const D = cat('d', Buffer.from([0xfb]), '.qcow2');
    same(['convert', '-O', 'qcow2', '-o', cat('data_file=', D, '.data'), T, D]);
    same(['map', D]);
    same(['check', D]);
    same(['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', D, cat('x', M)]);
    same(['compare', cat('x', M), T]);
    assert.deepEqual(listing(vdir), listing(qdir));
  });
});
