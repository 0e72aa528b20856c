/**
 * Network targets without `-n` and backing files named by URL, against
 * qemu-img on the same servers: convert, create and dd onto writable
 * qemu-nbd exports (qemu's protocol create: the export is opened, a size
 * larger than it is refused, the first sector zeroed), nbdkit memory, the
 * refusals (read-only export, preallocation, http targets), and chains
 * whose backing file is an NBD URL or a relative name in an image read
 * from nginx.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';

import { UnsafeReferenceError } from '../../src/core/errors.js';
import { convert, create, open } from '../../src/index.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { freePort, nbdkit, qemuNbd, requireServer, stopAll } from '../helpers/net-nbd.js';
import { requireNginx, startNginx, type Nginx } from '../helpers/net-http-nginx.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-net-nbdt-');
const servers: Nginx[] = [];
after(async () => {
  stopAll();
  await Promise.all(servers.map((s) => s.stop()));
  dir.cleanup();
});
const at = (n: string): string => join(dir.path, n);

/** A 4 MiB raw source: data, a hole, data, a hole. */
function source(): string {
  const src = at('src.raw');
  qemuImgOk(['create', '-f', 'raw', src, '4M']);
  qemuIo(src, ['write -P 0xab 0 1M', 'write -P 0xcd 2M 512k'], 'raw');
  return src;
}

let serial = 0;

/** A writable qemu-nbd export of a file of `size` bytes of 0x11 (what an export held before). */
function exportOf(size: number, readOnly = false): { uri: string; file: string } {
  const id = `e${serial++}`;
  const file = at(`${id}.raw`);
  writeFileSync(file, Buffer.alloc(size, 0x11));
  return { uri: qemuNbd(dir.path, id, file, { format: 'raw', exportName: id, readOnly }), file };
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
  bytes: Buffer;
}

/**
 * Runs `args` (with `URI` for the target) with qemu-img and with vdisk,
 * each on its own export of `size` bytes, and returns what each printed
 * (the URI put back as `URI`) and left in its export.
 */
function both(args: readonly string[], size: number, readOnly = false): { ours: Run; theirs: Run } {
  const run = (tool: (a: readonly string[]) => { status: number | null; stdout: string; stderr: string }): Run => {
    const e = exportOf(size, readOnly);
    const r = tool(args.map((a) => a.replace('URI', e.uri)));
    const shown = (s: string): string => s.replaceAll(e.uri, 'URI');
    return { status: r.status ?? -1, stdout: shown(r.stdout), stderr: shown(r.stderr), bytes: readFileSync(e.file) };
  };
  const theirs = run(qemuImg);
  const ours = run(vdisk);
  return { ours, theirs: { ...theirs, stderr: asVdisk(theirs.stderr) } };
}

function same(args: readonly string[], size: number, readOnly = false): Run {
  const { ours, theirs } = both(args, size, readOnly);
  const what = args.join(' ');
  assert.equal(ours.stderr, theirs.stderr, `stderr of ${what}`);
  assert.equal(ours.status, theirs.status, `exit status of ${what}`);
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${what}`);
  assert.ok(ours.bytes.equals(theirs.bytes), `the export after ${what}`);
  return ours;
}

function ready(t: TestContext): boolean {
  return requireQemu(t) && requireServer(t, 'qemu-nbd');
}

describe('net-nbdt: NBD exports as new targets (no -n)', () => {
  it('convert -O raw / qcow2 / qcow2 preallocated leaves the export byte for byte as qemu-img does', (t) => {
    if (!ready(t)) return;
    const src = source();
    for (const opts of [[], ['-O', 'qcow2'], ['-O', 'qcow2', '-o', 'preallocation=metadata'], ['-O', 'raw', '-o', 'preallocation=off']]) {
      same(['convert', '-f', 'raw', ...opts, src, 'URI'], 8 << 20);
    }
  });

  it('create -f raw / qcow2 and dd: the first sector zeroed, the rest of the export untouched, as qemu-img', (t) => {
    if (!ready(t)) return;
    const src = source();
    const made = same(['create', '-f', 'raw', 'URI', '4M'], 8 << 20);
    assert.ok(made.bytes.subarray(0, 512).every((b) => b === 0) && made.bytes[512] === 0x11);
    same(['create', '-f', 'raw', 'URI', '8M'], 8 << 20);
    same(['create', '-f', 'qcow2', 'URI', '100M'], 2 << 20);
    same(['dd', '-f', 'raw', '-O', 'raw', `if=${src}`, 'of=URI'], 8 << 20);
    same(['dd', '-f', 'raw', '-O', 'qcow2', `if=${src}`, 'of=URI'], 8 << 20);
  });

  it('refuses as qemu-img: export smaller than the image, read-only export, preallocation, file-only options, no size, nothing listening', async (t) => {
    if (!ready(t)) return;
    const src = source();
    const small = same(['convert', '-f', 'raw', src, 'URI'], 2 << 20);
    assert.match(small.stderr, /^vdisk: URI: error while converting raw: Cannot grow NBD nodes$/m);
    // Refused before the first sector is touched.
    assert.ok(same(['create', '-f', 'raw', 'URI', '9M'], 8 << 20).bytes.every((b) => b === 0x11));
    const ro = same(['convert', '-f', 'raw', src, 'URI'], 8 << 20, true);
    assert.match(ro.stderr, /Protocol driver 'nbd' does not support image creation, and opening the image failed: Could not open image: Permission denied/);
    same(['create', '-f', 'qcow2', 'URI', '1M'], 8 << 20, true);
    same(['convert', '-f', 'raw', '-o', 'preallocation=full', src, 'URI'], 8 << 20);
    same(['create', '-f', 'raw', '-o', 'preallocation=falloc', 'URI', '1M'], 8 << 20);
    same(['create', '-f', 'raw', 'URI'], 8 << 20);
    // An export's create options are qemu's simple list (size, preallocation=off): the file's are unknown there.
    same(['create', '-f', 'raw', '-o', 'preallocation=metadata', 'URI', '1M'], 8 << 20);
    same(['create', '-f', 'raw', '-o', 'preallocation=bogus', 'URI', '1M'], 8 << 20);
    same(['create', '-f', 'raw', '-o', 'nocow=on', 'URI', '1M'], 8 << 20);
    same(['create', '-f', 'qcow2', '-o', 'extent_size_hint=1M', 'URI', '1M'], 8 << 20);
    same(['convert', '-f', 'raw', '-o', 'nocow=off', src, 'URI'], 8 << 20);
    same(['convert', '-f', 'raw', '-o', 'preallocation=bogus', src, 'URI'], 8 << 20);
    same(['create', '-f', 'raw', '-o', 'help', 'URI'], 8 << 20);
    same(['convert', '-O', 'qcow2', '-o', 'help', src, 'URI'], 8 << 20);
    const closed = `nbd://127.0.0.1:${await freePort()}/x`;
    for (const args of [['convert', '-f', 'raw', src, closed], ['create', '-f', 'qcow2', closed, '1M']]) {
      const ours = vdisk(args);
      const theirs = qemuImg(args);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status);
    }
  });

  it('http(s) targets are refused in qemu-img\'s words, before anything is opened', (t) => {
    if (!requireQemu(t)) return;
    const src = source();
    for (const args of [
      ['convert', '-f', 'raw', src, 'http://127.0.0.1:1/x.raw'],
      ['convert', '-f', 'raw', '-O', 'qcow2', src, 'https://127.0.0.1:1/x.qcow2'],
      ['create', '-f', 'qcow2', 'http://127.0.0.1:1/x.qcow2', '1M'],
      ['dd', '-f', 'raw', `if=${src}`, 'of=http://127.0.0.1:1/x.raw'],
    ]) {
      const ours = vdisk(args);
      const theirs = qemuImg(args);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status);
      assert.equal(ours.stdout, theirs.stdout);
    }
  });

  it('nbdkit memory and the SDK: convert(src, uri) and create(uri) read back in qemu-img', async (t) => {
    if (!requireQemu(t) || !requireServer(t, 'nbdkit')) return;
    const src = source();
    const mem = nbdkit(dir.path, 'mem', ['memory', '8M']);
    const r = vdisk(['convert', '-f', 'raw', '-O', 'qcow2', src, mem]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', mem, src]).status, 0);
    assert.equal(qemuImg(['check', mem]).status, 0);
    const sdk = nbdkit(dir.path, 'sdk', ['memory', '8M']);
    await convert(src, sdk, { sourceFormat: 'raw', targetFormat: 'raw' });
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'raw', sdk, src]).status, 0);
    await create(sdk, { format: 'qcow2', size: '64M' });
    assert.match(qemuImgOk(['info', sdk]), /file format: qcow2\nvirtual size: 64 MiB/);
  });
});

describe('net-nbdt: backing files named by URL', () => {
  it('a local qcow2 over an NBD backing file: info --backing-chain, map and convert equal qemu-img; the SDK follows it when allowed', async (t) => {
    if (!ready(t)) return;
    const base = exportOf(4 << 20);
    mkdirSync(at('chain'), { recursive: true });
    const top = at('chain/top.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-b', base.uri, '-F', 'raw', top]);
    qemuIo(top, ['write -P 0x22 0 64k'], 'qcow2');
    for (const args of [['info', '--backing-chain', top], ['info', '--output=json', top], ['map', '--output=json', top], ['map', top]]) {
      const ours = vdisk(args);
      const theirs = qemuImg(args);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.stdout, theirs.stdout, args.join(' '));
    }
    assert.equal(vdisk(['convert', '-O', 'raw', top, at('chain.raw')]).status, 0);
    assert.equal(qemuImg(['compare', top, at('chain.raw')]).status, 0);
    // The SDK opens protocol names only when asked to (the CLI asks, as qemu-img follows them).
    await assert.rejects(open(top), (e: unknown) => e instanceof UnsafeReferenceError && /'nbd\+unix:' names are not followed unless protocols are allowed/.test(e.message));
    const img = await open(top, { allowUrls: true });
    const buf = new Uint8Array(4);
    await img.read(65536, buf);
    await img.close();
    assert.deepEqual([...buf], [0x11, 0x11, 0x11, 0x11]);
  });

  it('under --untrusted and an ingest policy the URL is refused with a typed error, never connected to', async (t) => {
    if (!requireQemu(t)) return;
    // Nothing listens there: a connection attempt would fail differently.
    const top = at('far.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-u', '-b', `nbd+unix:///x?socket=${at('nobody.sock')}`, '-F', 'raw', top, '1M']);
    const r = vdisk(['map', '--untrusted', top]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Refusing to open the backing file 'nbd\+unix:\/\/\/x\?socket=.*': network names are not followed/);
    await assert.rejects(open(top, { trust: 'untrusted' }), (e: unknown) => e instanceof UnsafeReferenceError && e.reason === 'network-reference');
    await assert.rejects(open(top, { policy: {} }), (e: unknown) => e instanceof UnsafeReferenceError && /trust mode 'none'/.test(e.message));
  });

  it('a relative backing name in an image read over HTTP is a URL beside it; over NBD it has no directory', async (t) => {
    if (!ready(t) || !requireNginx(t)) return;
    const www = at('www');
    mkdirSync(join(www, 'dir'), { recursive: true });
    const work = at('nginx');
    mkdirSync(work, { recursive: true });
    qemuImgOk(['create', '-f', 'qcow2', join(www, 'dir/base.qcow2'), '4M']);
    qemuIo(join(www, 'dir/base.qcow2'), ['write -P 0x33 1M 64k'], 'qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(www, 'dir/top.qcow2')]);
    qemuIo(join(www, 'dir/top.qcow2'), ['write -P 0x44 0 64k'], 'qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-u', '-b', '../dir/base.qcow2', '-F', 'qcow2', join(www, 'dir/up.qcow2'), '4M']);
    const nginx = await startNginx(www, work);
    servers.push(nginx);
    const url = nginx.url('dir/top.qcow2');
    const overNbd = qemuNbd(dir.path, 'reltop', join(www, 'dir/top.qcow2'), { format: 'raw', exportName: 't', readOnly: true });
    for (const args of [['info', '--backing-chain', url], ['map', '--output=json', url], ['info', overNbd], ['map', overNbd]]) {
      const ours = vdisk(args);
      const theirs = qemuImg(args);
      assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
      assert.equal(ours.status, theirs.status, args.join(' '));
      assert.equal(ours.stdout, theirs.stdout, args.join(' '));
    }
    assert.equal(vdisk(['convert', '-O', 'raw', url, at('http.raw')]).status, 0);
    assert.equal(qemuImg(['compare', url, at('http.raw')]).status, 0);
    // Untrusted: beside the image is followed, a way out of its directory is not.
    assert.equal(vdisk(['map', '--untrusted', url]).status, 0);
    const up = vdisk(['map', '--untrusted', nginx.url('dir/up.qcow2')]);
    assert.equal(up.status, 1);
    assert.match(up.stderr, /Refusing to open the backing file '\.\.\/dir\/base\.qcow2'/);
  });
});
