/**
 * The HTTP store against a server that misbehaves on purpose: every fault
 * ends in success after retries or in a typed error naming the URL (its
 * query string redacted), never in mixed data.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { convert, VdiskError } from '../../src/index.js';
import { HttpStore } from '../../src/net.js';
import { startFaultServer, type Faults, type FaultServer } from '../helpers/net-http-faults.js';
import { tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-net-http-');
after(() => dir.cleanup());

/** 3 MiB of bytes that differ everywhere (no zero runs), so every byte is copied. */
const DATA = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 9)) % 251 + 1);

const servers: FaultServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function serve(faults: Faults = {}, data = DATA): Promise<FaultServer> {
  const s = await startFaultServer(data, faults);
  servers.push(s);
  return s;
}

/** Converts `url` to a raw file through the SDK and returns the file's bytes. */
async function convertOnce(url: string, name: string, network = {}): Promise<Uint8Array> {
  const target = join(dir.path, name);
  await convert(url, target, { sourceFormat: 'raw', targetFormat: 'raw', network: { retries: 4, ...network } });
  return readFileSync(target);
}

describe('net-http: faults end in success after retries', () => {
  it('HEAD refused (405): the size comes from a ranged GET', async () => {
    const s = await serve({ headStatus: 405 });
    assert.deepEqual(await convertOnce(s.url, 'head.raw'), Buffer.from(DATA));
    assert.ok(s.seen.some((r) => r.method === 'HEAD' && r.status === 405));
  });

  it('a connection reset mid-body is retried', async () => {
    const s = await serve({ resets: 2 });
    assert.deepEqual(await convertOnce(s.url, 'reset.raw'), Buffer.from(DATA));
    assert.equal(s.faults.resets, 0);
  });

  it('a short body (connection closed early) is retried', async () => {
    const s = await serve({ shortBodies: 2 });
    assert.deepEqual(await convertOnce(s.url, 'short.raw'), Buffer.from(DATA));
    assert.equal(s.faults.shortBodies, 0);
  });

  it('a body that stalls is abandoned after timeoutMs and retried', async () => {
    const s = await serve({ stalls: 1 });
    assert.deepEqual(await convertOnce(s.url, 'stall.raw', { timeoutMs: 300 }), Buffer.from(DATA));
    assert.equal(s.faults.stalls, 0);
  });

  it('503 with Retry-After is retried', async () => {
    const s = await serve({ busy: 1 });
    assert.deepEqual(await convertOnce(s.url, 'busy.raw'), Buffer.from(DATA));
    assert.ok(s.seen.some((r) => r.status === 503));
  });

  it('the authorize hook and headers go on every request', async () => {
    const s = await serve({ authorization: 'Bearer t0ken' });
    const got = await convertOnce(s.url, 'auth.raw', { headers: { 'X-Extra': 'yes' }, authorize: (r: { headers: Record<string, string> }) => void (r.headers['authorization'] = 'Bearer t0ken') });
    assert.deepEqual(got, Buffer.from(DATA));
    assert.ok(s.seen.every((r) => r.headers['x-extra'] === 'yes' && r.status !== 401));
  });
});

describe('net-http: faults that cannot be retried are clear errors', () => {
  it('an object replaced mid-read fails naming the URL, and leaves no target', async () => {
    const s = await serve({ changeAfter: 1 });
    const target = join(dir.path, 'changed.raw');
    await assert.rejects(convert(`${s.url}?X-Amz-Signature=s3cret`, target, { sourceFormat: 'raw', targetFormat: 'raw', network: { concurrency: 1 } }), (err: unknown) => {
      assert.ok(err instanceof VdiskError, String(err));
      assert.match(err.message, /changed while it was read/);
      assert.ok(err.message.includes(s.url), err.message);
      assert.ok(!err.message.includes('s3cret'), err.message);
      return true;
    });
    assert.equal(existsSync(target), false);
  });

  it('retries exhausted: an EIO error naming the URL (query redacted) and the range', async () => {
    const s = await serve();
    const store = await HttpStore.open(`${s.url}?sig=s3cret`, { retries: 2 });
    try {
      s.faults.status = 503;
      const err = await store.read(1024, new Uint8Array(100)).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof VdiskError && err.code === 'EIO', String(err));
      assert.ok(err.message.includes(`'${s.url}?…'`) && err.message.includes('bytes 0-'), err.message);
      assert.ok(!err.message.includes('s3cret'));
      assert.equal(s.seen.filter((r) => r.status === 503).length, 2);
    } finally {
      await store.close();
    }
  });

  it('404 is ENOENT, 401/403 are EPERM, a server without ranges is EUNSUPPORTED', async () => {
    for (const [faults, code] of [[{ status: 404 }, 'ENOENT'], [{ status: 401 }, 'EPERM'], [{ status: 403 }, 'EPERM'], [{ noRanges: true, headStatus: 405 }, 'EUNSUPPORTED']] as const) {
      const s = await serve({ ...faults });
      await assert.rejects(HttpStore.open(s.url, { retries: 1 }), (err: unknown) => err instanceof VdiskError && err.code === code && err.file === s.url);
    }
  });
});

describe('net-http: reads', () => {
  it('never asks past the end; bytes past it read as zeros', async () => {
    const s = await serve({ headStatus: 405 });
    const store = await HttpStore.open(s.url);
    try {
      const into = new Uint8Array(4096).fill(9);
      assert.equal(await store.read(DATA.length - 10, into), 10);
      assert.deepEqual(into.subarray(0, 10), DATA.subarray(DATA.length - 10));
      assert.ok(into.subarray(10).every((b) => b === 0));
      assert.equal(await store.read(DATA.length + 5, into), 0);
      for (const r of s.seen) {
        const end = Number(/-(\d+)$/.exec(r.range ?? '')?.[1] ?? 0);
        assert.ok(end < DATA.length, `asked for ${r.range}`);
      }
    } finally {
      await store.close();
    }
  });

  it('adjacent reads waiting for a connection go as one request; small reads share cached blocks', async () => {
    const s = await serve();
    const store = await HttpStore.open(s.url, { concurrency: 1 });
    try {
      const chunk = 512 * 1024;
      const bufs = Array.from({ length: 6 }, () => new Uint8Array(chunk));
      await Promise.all(bufs.map((b, i) => store.read(i * chunk, b)));
      bufs.forEach((b, i) => assert.deepEqual(b, DATA.subarray(i * chunk, (i + 1) * chunk)));
      const gets = s.seen.filter((r) => r.method === 'GET').length;
      assert.ok(gets <= 2, `${gets} GETs for 6 adjacent reads`);
      const small = Array.from({ length: 64 }, () => new Uint8Array(512));
      await Promise.all(small.map((b, i) => store.read(i * 1024, b)));
      small.forEach((b, i) => assert.deepEqual(b, DATA.subarray(i * 1024, i * 1024 + 512)));
      assert.equal(s.seen.filter((r) => r.method === 'GET').length, gets + 1);
    } finally {
      await store.close();
    }
  });

  it('a server that ignores Range after a good HEAD: EUNSUPPORTED, not "changed"', async () => {
    const s = await serve({ noRanges: true });
    const store = await HttpStore.open(s.url);
    try {
      await assert.rejects(store.read(0, new Uint8Array(10)), (err: unknown) => err instanceof VdiskError && err.code === 'EUNSUPPORTED' && /range requests/.test(err.message));
    } finally {
      await store.close();
    }
  });

  it('is read-only', async () => {
    const s = await serve();
    await assert.rejects(HttpStore.open(s.url, { readOnly: false }), (err: unknown) => err instanceof VdiskError && err.code === 'EUNSUPPORTED');
  });
});
