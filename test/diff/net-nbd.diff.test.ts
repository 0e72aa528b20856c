/**
 * The NBD client against real servers: qemu-nbd (raw and qcow2 exports,
 * read-only and writable, unix socket and TCP) and nbdkit (memory, the
 * error and delay filters). map, info and convert equal qemu-img's over the
 * same export; what vdisk writes through NBD reads back in qemu-img.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { VdiskError } from '../../src/core/errors.js';
import { NbdStore } from '../../src/net.js';
import { open } from '../../src/index.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { freePort, nbdkit, qemuNbd, qemuNbdTls, requireServer, stopAll } from '../helpers/net-nbd.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-net-nbd-');
after(() => {
  stopAll();
  dir.cleanup();
});
const at = (n: string): string => join(dir.path, n);

/** A 4 MiB raw file with data, written zeros and holes; a qcow2 with data, zero clusters and a preallocated one. */
function images(prefix: string): { raw: string; qcow2: string; prealloc: string } {
  const raw = at(`${prefix}src.raw`);
  qemuImgOk(['create', '-f', 'raw', raw, '4M']);
  qemuIo(raw, ['write -P 1 0 64k', 'write -P 0 1M 64k', 'write -P 2 3M 512'], 'raw');
  const qcow2 = at(`${prefix}src.qcow2`);
  qemuImgOk(['create', '-f', 'qcow2', qcow2, '4M']);
  qemuIo(qcow2, ['write -P 1 0 64k', 'write -z 1M 64k', 'write -P 2 3M 512', 'write -z -u 2M 128k'], 'qcow2');
  const prealloc = at(`${prefix}prealloc.qcow2`);
  qemuImgOk(['create', '-f', 'qcow2', '-o', 'preallocation=metadata', prealloc, '2M']);
  qemuIo(prealloc, ['write -z 0 64k', 'write -P 3 1M 4k'], 'qcow2');
  return { raw, qcow2, prealloc };
}

function same(args: readonly string[]): void {
  const ours = vdisk(args);
  const theirs = qemuImg(args);
  assert.equal(ours.stderr, asVdisk(theirs.stderr), `stderr of ${args.join(' ')}`);
  assert.equal(ours.status, theirs.status, `exit status of ${args.join(' ')}`);
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${args.join(' ')}`);
}

describe('net-nbd: reading exports of qemu-nbd', () => {
  it('map (json and human), info and convert equal qemu-img over raw and qcow2 exports, unix and TCP', async (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd')) return;
    const img = images('r-');
    const uris = [
      qemuNbd(dir.path, 'raw', img.raw, { format: 'raw', exportName: 'disk', readOnly: true }),
      qemuNbd(dir.path, 'qcow2', img.qcow2, { format: 'qcow2', exportName: 'q', readOnly: true }),
      qemuNbd(dir.path, 'pre', img.prealloc, { format: 'qcow2', exportName: '', readOnly: true }),
      qemuNbd(dir.path, 'tcp', img.raw, { format: 'raw', exportName: 'disk', readOnly: true, port: await freePort() }),
    ];
    const tcp = uris[3] as string;
    uris.push(tcp.replace('nbd://', 'nbd+tcp://'), tcp.replace('/disk', '/d%69sk'));
    for (const uri of uris) {
      for (const args of [['map', '--output=json'], ['map'], ['info'], ['info', '--output=json']]) same([...args, uri]);
      assert.equal(vdisk(['convert', '-O', 'raw', uri, at('v.raw')]).status, 0);
      qemuImgOk(['convert', '-O', 'raw', uri, at('q.raw')]);
      assert.deepEqual(readFileSync(at('v.raw')), readFileSync(at('q.raw')), `convert of ${uri}`);
    }
  });

  it('a read-only store reads through native reader connections: convert equals qemu-img over qcow2 and raw exports, unix and TCP, as without them', async (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd')) return;
    const src = at('native-src.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', src, '48M']);
    // Data of every size around the 16-byte header and the socket's buffer, holes and zeros between.
    qemuIo(src, ['write -P 1 0 1', 'write -P 2 4095 2', 'write -P 3 1M 3M', 'write -z 5M 1M', 'write -P 4 7M 17M', 'write -P 5 40M 512', 'write -P 6 47M 1M'], 'qcow2');
    const raw = at('native-src.raw');
    qemuImgOk(['convert', '-O', 'raw', src, raw]);
    const uris = [
      qemuNbd(dir.path, 'nat-q', src, { format: 'qcow2', exportName: 'q', readOnly: true, shared: 4 }),
      qemuNbd(dir.path, 'nat-r', raw, { format: 'raw', exportName: 'r', readOnly: true, shared: 4, port: await freePort() }),
    ];
    for (const uri of uris) {
      const store = await NbdStore.open(uri, { readOnly: true, connections: 3 });
      try {
        for (let i = 0; i < 100 && store.nativeConnections < 2; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(store.nativeConnections, 2, `${uri}: the extra connections are native readers`);
        assert.equal(store.connections, 3);
        const back = new Uint8Array(48 * 1024 * 1024);
        assert.equal(await store.read(0, back), back.length);
        assert.ok(Buffer.from(back).equals(readFileSync(raw)), `${uri}: SDK read`);
      } finally {
        await store.close();
      }
      const theirs = at('native-theirs.raw');
      qemuImgOk(['convert', '-O', 'raw', uri, theirs]);
      for (const env of [{}, { VDISK_NO_NATIVE_NBD: '1' }]) {
        const ours = at('native-ours.raw');
        const r = vdisk(['convert', '-O', 'raw', uri, ours], { env });
        assert.equal(r.status, 0, r.stderr);
        assert.ok(readFileSync(ours).equals(readFileSync(theirs)), `${uri} ${JSON.stringify(env)}: convert`);
        assert.equal(vdisk(['map', '--output=json', '-f', 'raw', ours]).stdout, qemuImg(['map', '--output=json', '-f', 'raw', theirs]).stdout, `${uri}: sparseness`);
      }
    }
  });

  it("qemu's older names (nbd:unix:PATH, nbd:HOST:PORT, :exportname=) open, show and fail as in qemu-img", async (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd')) return;
    const img = images('l-');
    const port = await freePort();
    const unix = qemuNbd(dir.path, 'legacy', img.qcow2, { format: 'qcow2', exportName: '', readOnly: true });
    qemuNbd(dir.path, 'legacy-tcp', img.raw, { format: 'raw', exportName: 'disk', readOnly: true, port });
    const socket = (/socket=(.*)$/.exec(unix) as RegExpExecArray)[1] as string;
    const names = [`nbd:unix:${socket}`, `nbd:127.0.0.1:${port}:exportname=disk`, `nbd:[127.0.0.1]:${port}:exportname=disk`, `nbd:127.0.0.1:${port},ipv4:exportname=disk`];
    for (const name of names) {
      for (const args of [['map', '--output=json'], ['info'], ['info', '--output=json']]) same([...args, name]);
      assert.equal(vdisk(['convert', '-O', 'raw', name, at('l.raw')]).status, 0);
      qemuImgOk(['convert', '-O', 'raw', name, at('lq.raw')]);
      assert.deepEqual(readFileSync(at('l.raw')), readFileSync(at('lq.raw')), `convert of ${name}`);
    }
    // qemu's parse errors, an empty export name (no server then), a missing socket, an export the server lacks.
    const bad = ['nbd:', 'nbd:localhost', 'nbd:localhost:', 'nbd:[::1]', `nbd::${port}`, `nbd:127.0.0.1:${port}:exportname=`, `nbd:unix:${socket}:exportname=`, 'nbd:127.0.0.1:abc', 'nbd:unix:/nonexistent.sock', `nbd:127.0.0.1:${port}`, 'nbd:x://y'];
    for (const name of bad) same(['info', name]);
  });

  it('convert skips the holes block status reports (nbdkit log filter: only data ranges and the probe are read)', (t) => {
    if (!requireServer(t, 'nbdkit')) return;
    const img = images('h-');
    const log = at('reads.log');
    const uri = nbdkit(dir.path, 'log', ['--filter=log', 'file', img.raw, `logfile=${log}`]);
    const r = vdisk(['convert', '-O', 'raw', uri, at('h.raw')]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readFileSync(at('h.raw')), readFileSync(img.raw));
    const reads = [...readFileSync(log, 'utf8').matchAll(/Read id=\d+ offset=0x([0-9a-f]+) count=0x([0-9a-f]+)/g)].map((m) => [parseInt(m[1] as string, 16), parseInt(m[2] as string, 16)]);
    const read = reads.reduce((n, [, c]) => n + (c as number), 0);
    // 64 KiB + 64 KiB + 4 KiB of data, and the format probe's first sector.
    assert.ok(read <= 3 * 65536, `read ${read} bytes of a 4 MiB export: ${JSON.stringify(reads)}`);
    assert.ok(reads.every(([o]) => [0, 0x100000, 0x300000].includes(o as number)), JSON.stringify(reads));
  });

  it('refuses what qemu-img refuses, in its words', (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd')) return;
    const raw = at('small.raw');
    qemuImgOk(['create', '-f', 'raw', raw, '1M']);
    const uri = qemuNbd(dir.path, 'ro', raw, { format: 'raw', exportName: 'x', readOnly: true });
    const socket = at('ro.sock');
    // A refused connection, and a host name that does not resolve (both tools ask getaddrinfo: whatever it says, alike).
    const refused = ['nbd://127.0.0.1:1/x', 'nbd://no-such-host.invalid/x'];
    for (const bad of [`nbd+unix:///nope?socket=${socket}`, `nbd+unix:///x?socket=${at('missing.sock')}`, 'nbd+unix:///x', 'nbd://127.0.0.1:1/x?socket=a', `nbd+unix://host/x?socket=${socket}`, ...refused]) {
      same(['info', bad]);
    }
    // A writable open of a read-only export.
    same(['convert', '-n', '-O', 'raw', raw, uri]);
  });
});

describe('net-nbd: writing exports', () => {
  it('convert -n into a writable qemu-nbd export and into nbdkit memory reads back in qemu-img', (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd') || !requireServer(t, 'nbdkit')) return;
    const img = images('w-');
    const target = at('target.raw');
    qemuImgOk(['create', '-f', 'raw', target, '4M']);
    qemuIo(target, ['write -P 9 0 4M'], 'raw');
    const rw = qemuNbd(dir.path, 'rw', target, { format: 'raw', exportName: 't' });
    const r1 = vdisk(['convert', '-n', '-O', 'raw', img.qcow2, rw]);
    assert.equal(r1.status, 0, r1.stderr);
    assert.equal(qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', img.qcow2, rw]).status, 0);
    const mem = nbdkit(dir.path, 'mem', ['memory', '4M']);
    const r2 = vdisk(['convert', '-n', '-O', 'raw', img.raw, mem]);
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'raw', img.raw, mem]).status, 0);
    same(['map', '--output=json', mem]);
  });

  it('the SDK store writes, zeroes, trims, flushes and reads back', async (t) => {
    if (!requireServer(t, 'nbdkit')) return;
    const uri = nbdkit(dir.path, 'sdk', ['memory', '1M']);
    const store = await NbdStore.open(uri);
    try {
      assert.equal(await store.size(), 1024 * 1024);
      const data = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
      await store.write(4096, data);
      const back = new Uint8Array(data.length);
      assert.equal(await store.read(4096, back), data.length);
      assert.deepEqual(back, data);
      assert.equal(await store.zeroRange(65536, 65536, true), true);
      assert.equal(await store.trim(512 * 1024, 4096), true);
      await store.flush();
      const z = new Uint8Array(65536);
      await store.read(65536, z);
      assert.ok(z.every((b) => b === 0));
      const ext = await store.extents(0, 1024 * 1024);
      assert.ok(ext && ext.length > 0 && ext[0]?.offset === 0);
      // Past the end: zeros, and only the bytes inside are counted.
      const tail = new Uint8Array(100).fill(1);
      assert.equal(await store.read(1024 * 1024 - 10, tail), 10);
      assert.ok(tail.subarray(10).every((b) => b === 0));
      await assert.rejects(store.write(1024 * 1024 - 10, new Uint8Array(20)), (e: unknown) => e instanceof VdiskError && e.code === 'EIO');
      await assert.rejects(store.truncate(2 * 1024 * 1024), /Cannot grow NBD nodes/);
      // nbdkit's memory plugin advertises multi-conn: a second connection joins, and requests go round both.
      for (let i = 0; i < 100 && store.connections < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(store.connections, 2);
      const expected = Uint8Array.from(data).fill(0, 65536 - 4096, 131072 - 4096);
      for (let i = 0; i < 4; i++) {
        const again = new Uint8Array(data.length);
        await store.read(4096, again);
        assert.deepEqual(again, expected);
      }
    } finally {
      await store.close();
    }
  });
});

describe('net-nbd: faults', () => {
  it('nbdkit error filter: read and write errors end in qemu-img\'s messages, no target left', (t) => {
    if (!requireQemu(t) || !requireServer(t, 'nbdkit')) return;
    const reads = nbdkit(dir.path, 'eread', ['--filter=error', 'memory', '8M', 'error=EIO', 'error-pread-rate=100%']);
    same(['convert', '-O', 'raw', reads, at('never.raw')]);
    assert.equal(vdisk(['info', at('never.raw')]).status, 1);
    const raw = at('w.raw');
    qemuImgOk(['create', '-f', 'raw', raw, '1M']);
    qemuIo(raw, ['write -P 5 0 64k'], 'raw');
    const writes = nbdkit(dir.path, 'ewrite', ['--filter=error', 'memory', '8M', 'error=ENOSPC', 'error-pwrite-rate=100%']);
    const r = vdisk(['convert', '-n', '-O', 'raw', raw, writes]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /No space left on device/);
  });

  it('a server that requires TLS is refused at NBD_OPT_GO, in qemu-img\'s words', (t) => {
    if (!requireQemu(t) || !requireServer(t, 'nbdkit')) return;
    const psk = at('psk.txt');
    writeFileSync(psk, `alice:${'0123456789abcdef'.repeat(2)}\n`, { mode: 0o600 });
    const uri = nbdkit(dir.path, 'tls', ['--tls=require', `--tls-psk=${psk}`, 'memory', '1M']);
    const ours = vdisk(['info', uri]);
    const theirs = qemuImg(['info', uri]);
    assert.equal(ours.status, 1);
    // The first line is qemu's; its hint names qemu's tls-creds option, vdisk's says TLS is not negotiated.
    assert.equal(ours.stderr.split('\n')[0], asVdisk(theirs.stderr).split('\n')[0]);
    assert.match(ours.stderr, /TLS negotiation required before option 7 \(go\)/);
  });

  it('a server that stops answering times out with a typed error naming the export', async (t) => {
    if (!requireServer(t, 'nbdkit')) return;
    // The pattern plugin is all data, so the read reaches the (delayed) server.
    const uri = nbdkit(dir.path, 'slow', ['--filter=delay', 'pattern', '1M', 'delay-read=20']);
    const img = await open(uri, { format: 'raw', readOnly: true, network: { timeoutMs: 300 } });
    try {
      await assert.rejects(img.read(0, new Uint8Array(4096)), (e: unknown) => {
        assert.ok(e instanceof VdiskError, String(e));
        assert.equal(e.code, 'EIO');
        assert.match(e.message, /timed out/);
        assert.equal(e.file, uri.replace(':///?', '://?'), 'the export as qemu names it');
        return true;
      });
    } finally {
      await img.close().catch(() => undefined);
    }
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate in `pki` (qemu's tls-creds-x509 layout); false without openssl. */
function makePki(pki: string): boolean {
  if (spawnSync('openssl', ['version']).status !== 0) return false;
  mkdirSync(pki);
  const ssl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: pki, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=vdisk test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  for (const [who, ext] of [
    ['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'],
    ['client', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'],
  ] as const) {
    writeFileSync(join(pki, `${who}.cnf`), ext);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', `/CN=${who === 'server' ? 'localhost' : 'vdisk client'}`]);
    ssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${who}-cert.pem`, '-days', '2', '-extfile', `${who}.cnf`]);
  }
  return true;
}

describe('net-nbd: TLS (nbds:// and nbds+unix://, as libnbd spells them)', () => {
  it('PSK with nbdkit: convert -n writes through TLS, qemu-img reads it back with the same key', (t) => {
    if (!requireQemu(t) || !requireServer(t, 'nbdkit')) return;
    const keys = at('pskdir');
    mkdirSync(keys);
    const psk = join(keys, 'keys.psk');
    writeFileSync(psk, `alice:${'00112233445566778899aabbccddeeff'}\n`, { mode: 0o600 });
    const plain = nbdkit(dir.path, 'psk', ['--tls=require', `--tls-psk=${psk}`, 'memory', '1M']);
    const socket = at('psk.sock');
    const uri = `nbds+unix:///?socket=${socket}&tls-psk-file=${psk}&tls-username=alice`;
    const src = at('psk-src.raw');
    qemuImgOk(['create', '-f', 'raw', src, '1M']);
    qemuIo(src, ['write -P 4 0 64k', 'write -P 6 512k 4k'], 'raw');
    const w = vdisk(['convert', '-n', '-O', 'raw', src, uri]);
    assert.equal(w.status, 0, w.stderr);
    const json = JSON.stringify({ driver: 'nbd', server: { type: 'unix', path: socket }, 'tls-creds': 'tls0' });
    const back = qemuImg(['compare', '--object', `tls-creds-psk,id=tls0,dir=${keys},endpoint=client,username=alice`, '-f', 'raw', src, `json:${json}`]);
    assert.equal(back.status, 0, back.stdout + back.stderr);
    assert.equal(vdisk(['compare', '-f', 'raw', '-F', 'raw', src, uri]).status, 0);
    // Without TLS, or with a user the file has no key for: refused, typed.
    assert.match(vdisk(['info', plain]).stderr, /TLS negotiation required before option 7 \(go\)/);
    assert.match(vdisk(['info', uri.replace('alice', 'bob')]).stderr, /has no key for user 'bob'/);
  });

  it('X.509 with qemu-nbd --tls-creds: map equals qemu-img map through its tls-creds-x509', async (t) => {
    if (!requireQemu(t) || !requireServer(t, 'qemu-nbd')) return;
    const pki = at('pki');
    if (!makePki(pki)) {
      process.stderr.write('\n*** openssl not found: the X.509 NBD test is SKIPPED (install openssl) ***\n\n');
      t.skip('openssl not installed');
      return;
    }
    const img = images('tls-');
    const port = await freePort();
    qemuNbdTls(dir.path, img.raw, pki, port);
    const ours = vdisk(['map', '--output=json', `nbds://127.0.0.1:${port}/disk?tls-certificates=${pki}`]);
    const json = JSON.stringify({ driver: 'nbd', server: { type: 'inet', host: '127.0.0.1', port: String(port) }, export: 'disk', 'tls-creds': 'tls0' });
    const theirs = qemuImg(['map', '--output=json', '--object', `tls-creds-x509,id=tls0,dir=${pki},endpoint=client`, `json:${json}`]);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.stderr, '');
    assert.equal(ours.stdout, theirs.stdout);
    // A CA that did not sign the server's certificate: the handshake fails, typed.
    const other = at('pki2');
    makePki(other);
    const bad = vdisk(['info', `nbds://127.0.0.1:${port}/disk?tls-certificates=${other}`]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /TLS handshake with 'nbds:\/\/127\.0\.0\.1:\d+\/disk' failed/);
  });
});
