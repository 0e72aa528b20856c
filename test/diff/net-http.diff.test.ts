/**
 * vdisk over HTTP against a real nginx (Debian nginx-light) serving images
 * qemu-img made: info, map, check, compare and convert of http:// URLs give
 * what qemu-img gives for the same URL (its curl driver) or for the local
 * file, within the bytes-transferred budget the issue sets (nginx's access
 * log counts them): convert ≤ 1.1 × the file, info ≤ 1 MiB, map ≤ 8 MiB of
 * a 1 GiB qcow2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { NGINX_BIN, requireNginx, startNginx, type Nginx } from '../helpers/net-http-nginx.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-net-http-diff-');
const www = join(dir.path, 'www');
const work = join(dir.path, 'nginx');
let nginx: Nginx | undefined;
let nginxTls: Nginx | undefined;
const cert = join(dir.path, 'cert.pem');
const MiB = 1024 * 1024;

before(async () => {
  if (!hasQemu || !existsSync(NGINX_BIN)) return;
  mkdirSync(join(www, 'private'), { recursive: true });
  mkdirSync(work);
  qemuImgOk(['create', '-q', '-f', 'qcow2', join(www, 'small.qcow2'), '64M']);
  qemuIo(join(www, 'small.qcow2'), ['write -P 0x5a 1M 3M', 'write -P 0x11 40M 64k', 'write -z 50M 1M'], 'qcow2');
  qemuImgOk(['convert', '-O', 'raw', join(www, 'small.qcow2'), join(www, 'small.raw')]);
  qemuImgOk(['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', join(www, 'small.raw'), join(www, 'small.vmdk')]);
  qemuImgOk(['convert', '-O', 'qcow2', join(www, 'small.qcow2'), join(www, 'private', 'p.qcow2')]);
  // 1 GiB virtual, 32 MiB of data spread over all of it (one MiB every 32 MiB).
  qemuImgOk(['create', '-q', '-f', 'qcow2', join(www, 'big.qcow2'), '1G']);
  qemuIo(join(www, 'big.qcow2'), Array.from({ length: 32 }, (_, i) => `write -P ${i + 1} ${i * 32 + (i % 7)}M 1M`), 'qcow2');
  nginx = await startNginx(www, work, 'location /private/ { if ($http_x_token != "s3cret") { return 403; } }');
  const key = join(dir.path, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  if (made.status === 0) {
    mkdirSync(join(dir.path, 'nginx-tls'));
    nginxTls = await startNginx(www, join(dir.path, 'nginx-tls'), '', { cert, key });
  }
});
after(async () => {
  await nginx?.stop();
  await nginxTls?.stop();
  dir.cleanup();
});

function ready(t: TestContext): Nginx | undefined {
  if (!requireQemu(t) || !requireNginx(t)) return undefined;
  return nginx;
}

/** Runs vdisk with `args`, counting what nginx sent for it. */
function counted(n: Nginx, args: string[]): { stdout: string; stderr: string; status: number; bytes: number } {
  n.reset();
  const r = vdisk(args, { cwd: dir.path });
  return { ...r, bytes: n.bytesSent() };
}

describe('net-http: convert from an http:// URL gives the source bytes', () => {
  for (const name of ['small.qcow2', 'small.raw', 'small.vmdk', 'big.qcow2']) {
    it(`convert -O raw ${name}`, (t) => {
      const n = ready(t);
      if (!n) return;
      const ours = join(dir.path, `${name}.v.raw`);
      const theirs = join(dir.path, `${name}.q.raw`);
      const r = counted(n, ['convert', '-O', 'raw', n.url(name), ours]);
      assert.equal(r.status, 0, r.stderr);
      qemuImgOk(['convert', '-O', 'raw', join(www, name), theirs]);
      assert.ok(readFileSync(ours).equals(readFileSync(theirs)), 'bytes differ');
      const size = statSync(join(www, name)).size;
      assert.ok(r.bytes <= 1.1 * size + 64 * 1024, `${r.bytes} bytes sent for a ${size}-byte file:\n${n.requests().join('\n')}`);
    });
  }

  it('convert -O qcow2 of a qcow2 URL passes qemu-img compare with the local file', (t) => {
    const n = ready(t);
    if (!n) return;
    const out = join(dir.path, 'copy.qcow2');
    const r = vdisk(['convert', '-O', 'qcow2', n.url('small.qcow2'), out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(qemuImg(['compare', out, join(www, 'small.qcow2')]).status, 0);
  });
});

describe('net-http: the sparse target (data scanned and written off the main thread)', () => {
  it('convert -O raw of a URL leaves the holes qemu-img convert of the file leaves', (t) => {
    const n = ready(t);
    if (!n) return;
    const name = 'holey.qcow2';
    qemuImgOk(['create', '-q', '-f', 'qcow2', join(www, name), '8M']);
    // Zero runs inside data clusters: long ones (≥ 4 KiB) become holes, a short one stays data.
    qemuIo(join(www, name), ['write -P 0x22 0 1M', 'write -z 128k 8k', 'write -z 300k 2k', 'write -z 600k 4k', 'write -P 0x33 2M 5k', 'write -P 0x44 7M 1M'], 'qcow2');
    for (const sparse of [[], ['-S', '0'], ['-S', '64k']]) {
      const ours = join(dir.path, 'holey.v.raw');
      const theirs = join(dir.path, 'holey.q.raw');
      const r = vdisk(['convert', ...sparse, '-O', 'raw', n.url(name), ours]);
      assert.equal(r.status, 0, r.stderr);
      qemuImgOk(['convert', ...sparse, '-O', 'raw', join(www, name), theirs]);
      assert.ok(readFileSync(ours).equals(readFileSync(theirs)), `bytes differ (${sparse.join(' ')})`);
      const map = (f: string) => qemuImgOk(['map', '--output=json', '-f', 'raw', f]);
      assert.equal(map(ours), map(theirs), `holes differ (${sparse.join(' ')})`);
    }
  });
});

describe('net-http: info, map, check and compare of a URL equal qemu-img of the same URL', () => {
  for (const args of [['info'], ['info', '--output=json'], ['map'], ['map', '--output=json'], ['check'], ['check', '--output=json']]) {
    for (const name of ['small.qcow2', 'small.raw', 'big.qcow2']) {
      it(`${args.join(' ')} ${name}`, (t) => {
        const n = ready(t);
        if (!n) return;
        const theirs = qemuImg([...args, n.url(name)]);
        if (/Unknown protocol/.test(theirs.stderr)) return void t.skip('qemu-img has no curl driver (Debian qemu-block-extra): URL comparison SKIPPED');
        const ours = counted(n, [...args, n.url(name)]);
        // raw has nothing to check: both exit 63 with the same words.
        assert.equal(theirs.status, args[0] === 'check' && name.endsWith('.raw') ? 63 : 0, theirs.stderr);
        assert.equal(ours.status, theirs.status, ours.stderr);
        assert.equal(asVdisk(theirs.stderr), ours.stderr);
        assert.equal(ours.stdout, theirs.stdout);
        if (name === 'big.qcow2' && args[0] === 'info') assert.ok(ours.bytes <= MiB, `info sent ${ours.bytes} bytes`);
        if (name === 'big.qcow2' && args[0] === 'map') assert.ok(ours.bytes <= 8 * MiB, `map sent ${ours.bytes} bytes`);
      });
    }
  }

  it('compare of a URL with the local file: identical', (t) => {
    const n = ready(t);
    if (!n) return;
    const r = vdisk(['compare', n.url('small.qcow2'), join(www, 'small.raw')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Images are identical.\n');
  });

  it('a missing object: qemu-img\'s error, exit 1', (t) => {
    const n = ready(t);
    if (!n) return;
    const r = vdisk(['info', n.url('nope.qcow2')]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `vdisk: Could not open '${n.url('nope.qcow2')}': Error opening file: The requested URL returned error: 404\n`);
  });
});

describe('net-http: --header', () => {
  it('is sent on every request; without it the server refuses (EPERM, 403)', (t) => {
    const n = ready(t);
    if (!n) return;
    const url = n.url('private/p.qcow2');
    const refused = vdisk(['info', url]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /returned error: 403/);
    const local = join(www, 'private', 'p.qcow2');
    for (const args of [['info'], ['map'], ['check']]) {
      const ok = vdisk([...args, '--header', 'X-Token: s3cret', url]);
      assert.equal(ok.status, 0, ok.stderr);
      // A server does not tell how much space the object takes: qemu-img too prints "unavailable".
      const expected = vdisk([...args, local]).stdout.replaceAll(local, url).replace(/^disk size: .*$/m, 'disk size: unavailable');
      assert.equal(ok.stdout, expected);
    }
    const out = join(dir.path, 'private.raw');
    const conv = vdisk(['convert', '--header', 'X-Token: s3cret', '-O', 'raw', url, out]);
    assert.equal(conv.status, 0, conv.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(join(www, 'small.raw'))));
  });

  it('a header without a colon is refused', (t) => {
    const n = ready(t);
    if (!n) return;
    const r = vdisk(['info', '--header', 'X-Token', n.url('small.qcow2')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Invalid header 'X-Token'/);
  });
});

describe('net-http: https://', () => {
  it('convert and info over TLS (the server certificate trusted through NODE_EXTRA_CA_CERTS); an untrusted one is refused', (t) => {
    if (!ready(t)) return;
    if (!nginxTls) return void t.skip('openssl could not make a certificate: https test SKIPPED');
    const url = nginxTls.url('small.qcow2');
    const out = join(dir.path, 'tls.raw');
    const r = vdisk(['convert', '-O', 'raw', url, out], { env: { NODE_EXTRA_CA_CERTS: cert } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(join(www, 'small.raw'))));
    const refused = vdisk(['info', url]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`^vdisk: Could not open '${url}': Error opening file: .*certificate`));
  });
});
