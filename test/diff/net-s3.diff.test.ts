/**
 * s3:// sources and targets against s3rver (a real S3-API server from
 * npm), started here in-process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { convert } from '../../src/index.js';
import { signRequest } from '../../src/io/s3/sigv4.js';
import { choosePartSize } from '../../src/io/s3/upload.js';
import { IoError, PermissionError } from '../../src/core/errors.js';
import { S3Store } from '../../src/net.js';
import { VDISK_BIN } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, tmpDir } from '../helpers/qemu.js';
import { hasS3rver, startS3, type S3Server } from '../helpers/net-s3-server.js';

const run = promisify(execFile);
const skip = !hasS3rver() ? 'SKIPPED: s3rver (npm devDependency) is not installed' : !hasQemu ? 'SKIPPED: qemu-img (Debian qemu-utils) is not installed' : false;
if (skip) console.warn(`net-s3: ${skip}`);

describe('s3 signing and part sizes', () => {
  it('signs the AWS documentation example (GET Object, SigV4)', () => {
    const creds = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
    const h = signRequest({ method: 'GET', host: 'examplebucket.s3.amazonaws.com', path: '/test.txt', query: [], headers: { Range: 'bytes=0-9' }, payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }, creds, 'us-east-1', new Date('2013-05-24T00:00:00Z'));
    assert.equal(h['authorization'], 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });

  it('keeps the part count within 10 000 for any length', () => {
    assert.equal(choosePartSize(100 << 20), 8 << 20);
    for (const len of [10_000 * (8 << 20) + 1, 5 * 2 ** 40, 40 * 2 ** 40]) assert.ok(Math.ceil(len / choosePartSize(len)) <= 10_000);
  });
});

describe('s3:// with s3rver', { skip }, () => {
  let server: S3Server;
  let dir: { path: string; cleanup: () => void };
  const saved = { ...process.env };

  before(async () => {
    dir = tmpDir('vdisk-net-s3-');
    server = await startS3(join(dir.path, 'store'), ['bkt']);
    Object.assign(process.env, server.env);
  });
  after(async () => {
    process.env = saved;
    await server?.close();
    dir?.cleanup();
  });

  const put = async (key: string, data: Uint8Array): Promise<void> => {
    // A plain (unsigned) PUT: s3rver accepts anonymous writes.
    const res = await fetch(`${server.url}/bkt/${key}`, { method: 'PUT', body: data });
    assert.equal(res.status, 200);
  };
  const get = async (key: string): Promise<Response> => fetch(`${server.url}/bkt/${key}`);
  const pending = async (): Promise<string> => (await (await fetch(`${server.url}/bkt?uploads`)).text());

  it('converts from an s3:// qcow2 as qemu-img converts the local file', async () => {
    const src = join(dir.path, 'src.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', src, '8M']);
    qemuImgOk(['convert', '-O', 'qcow2', src, src + '.tmp']);
    const io = join(dir.path, 'pattern.raw');
    writeFileSync(io, Buffer.alloc(8 << 20, 0));
    const buf = readFileSync(io);
    for (let i = 0; i < 64; i++) buf.fill(i + 1, i * 131072, i * 131072 + 4096);
    writeFileSync(io, buf);
    qemuImgOk(['convert', '-O', 'qcow2', io, src]);
    await put('disk.qcow2', readFileSync(src));
    const out = join(dir.path, 'out.raw');
    const r = await run(process.execPath, [VDISK_BIN, 'convert', '-O', 'raw', 's3://bkt/disk.qcow2', out], { env: { ...process.env } });
    assert.equal(r.stderr, '');
    const ref = join(dir.path, 'ref.raw');
    qemuImgOk(['convert', '-O', 'raw', src, ref]);
    assert.ok(readFileSync(out).equals(readFileSync(ref)));
  });

  it('uploads convert -O raw to s3:// in one PUT, and qemu-img compare finds it equal', async () => {
    const src = join(dir.path, 'small.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', src, '2M']);
    await convert(src, 's3://bkt/small.raw', { targetFormat: 'raw' });
    const got = join(dir.path, 'small.raw');
    writeFileSync(got, Buffer.from(await (await get('small.raw')).arrayBuffer()));
    assert.equal(qemuImg(['compare', src, got]).status, 0);
  });

  it('uploads a multipart image (5 MiB parts), and qemu-img compare finds it equal', async () => {
    const raw = join(dir.path, 'big.raw');
    const data = Buffer.alloc(12 << 20);
    for (let i = 0; i < data.length; i += 65536) data.writeUInt32LE(i + 1, i);
    writeFileSync(raw, data);
    const r = await run(process.execPath, [VDISK_BIN, 'convert', '-O', 'raw', raw, 's3://bkt/dir/big.raw'], { env: { ...process.env } });
    assert.equal(r.stderr, '');
    await convert(raw, 's3://bkt/parts.raw', { targetFormat: 'raw', uploadPartSize: 5 << 20 });
    for (const key of ['dir/big.raw', 'parts.raw']) {
      const got = join(dir.path, 'got.raw');
      writeFileSync(got, Buffer.from(await (await get(key)).arrayBuffer()));
      assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'raw', raw, got]).status, 0, key);
    }
    assert.doesNotMatch(await pending(), /<Upload>/);
  });

  it('an aborted upload leaves no object and no pending multipart upload', async () => {
    const raw = join(dir.path, 'abort.raw');
    writeFileSync(raw, Buffer.alloc(16 << 20, 7));
    const ac = new AbortController();
    const job = convert(raw, 's3://bkt/aborted.raw', { targetFormat: 'raw', uploadPartSize: 5 << 20, signal: ac.signal });
    job.on('progress', (p) => { if (p.phase === 'copy' && p.done > 0) ac.abort(); });
    await assert.rejects(job, { code: 'EABORTED' });
    assert.equal((await get('aborted.raw')).status, 404);
    assert.doesNotMatch(await pending(), /<Upload>/);
  });

  it('retries a 503 SlowDown (Retry-After) and reads the object', async () => {
    await put('retry.raw', Buffer.alloc(1 << 20, 9));
    server.faults.unavailable = 3;
    const store = await S3Store.open('s3://bkt/retry.raw', { retries: 5 });
    const into = new Uint8Array(4096);
    assert.equal(await store.read(4096, into), 4096);
    assert.ok(into.every((b) => b === 9));
    assert.equal(server.faults.unavailable, 0);
    const impatient = await S3Store.open('s3://bkt/retry.raw', { retries: 2 });
    server.faults.unavailable = 2;
    await assert.rejects(impatient.read(0, into), (e: unknown) => e instanceof IoError && /bytes 0-4095 of 's3:\/\/bkt\/retry\.raw'.*503.*SlowDown.*after 2 attempts/.test(e.message));
    server.faults.unavailable = 0;
    await impatient.close();
    await store.close();
  });

  it('an object replaced between reads fails naming it, never mixing data', async () => {
    await put('pinned.raw', Buffer.alloc(1 << 20, 1));
    const store = await S3Store.open('s3://bkt/pinned.raw');
    const into = new Uint8Array(512);
    await store.read(0, into);
    await put('pinned.raw', Buffer.alloc(1 << 20, 2));
    await assert.rejects(store.read(512, into), (e: unknown) => e instanceof IoError && /s3:\/\/bkt\/pinned\.raw.*changed/.test(e.message));
    await store.close();
  });

  it('bad credentials are a PermissionError naming the object', async () => {
    process.env['AWS_ACCESS_KEY_ID'] = 'WRONG';
    try {
      await assert.rejects(convert('s3://bkt/disk.qcow2', join(dir.path, 'x.raw'), {}), (e: unknown) => e instanceof PermissionError && /s3:\/\/bkt\/disk\.qcow2/.test(e.message));
    } finally {
      process.env['AWS_ACCESS_KEY_ID'] = server.env['AWS_ACCESS_KEY_ID'];
    }
  });
});
