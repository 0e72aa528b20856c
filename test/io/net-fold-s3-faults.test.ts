/**
 * S3 reads go through the transport, retry policy and ranged-read checks
 * the HTTP store uses: the fault server of the HTTP tests, taken as an
 * unsigned path-style S3 endpoint, injects the same faults (resets, short
 * bodies, stalls, 503 + Retry-After, an object replaced mid-read, a server
 * that ignores Range), and S3Store survives or reports them as HttpStore
 * does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { VdiskError } from '../../src/index.js';
import { S3Store } from '../../src/net.js';
import { startFaultServer, type Faults, type FaultServer } from '../helpers/net-http-faults.js';

/** 1 MiB that differs everywhere, so a misplaced byte shows. */
const DATA = new Uint8Array(1024 * 1024).map((_, i) => ((i * 13 + (i >> 8)) % 251) + 1);

const servers: FaultServer[] = [];
const saved = { ...process.env };

before(() => {
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL_S3']) delete process.env[k];
  Object.assign(process.env, { AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_REGION: 'us-east-1' });
});
after(async () => {
  process.env = saved;
  await Promise.all(servers.map((s) => s.close()));
});

/** Opens the fault server's object as `s3://bkt/disk.img` (the server serves its one object at any path). */
async function open(faults: Faults, network = {}): Promise<{ server: FaultServer; store: S3Store }> {
  const server = await startFaultServer(DATA, faults);
  servers.push(server);
  process.env['AWS_ENDPOINT_URL'] = new URL(server.url).origin;
  return { server, store: await S3Store.open('s3://bkt/disk.img', { retries: 4, ...network }) };
}

async function readAll(store: S3Store): Promise<Uint8Array> {
  const into = new Uint8Array(DATA.length);
  assert.equal(await store.read(0, into), DATA.length);
  return into;
}

describe('net-fold: S3 reads share the HTTP transport and retry policy', () => {
  for (const [what, faults, network] of [
    ['a reset mid-body', { resets: 2 }, {}],
    ['a short body', { shortBodies: 2 }, {}],
    ['a stalled body (timeoutMs)', { stalls: 1 }, { timeoutMs: 300 }],
    ['503 with Retry-After', { busy: 1 }, {}],
  ] as const) {
    it(`${what} is retried and the bytes are right`, async () => {
      const { server, store } = await open({ ...faults }, network);
      try {
        assert.deepEqual(await readAll(store), DATA);
        assert.ok(server.seen.some((r) => r.method === 'GET' && r.headers['if-match'] !== undefined), 'reads are pinned with If-Match');
      } finally {
        await store.close();
      }
    });
  }

  it('an object replaced mid-read is an error naming it, never mixed data', async () => {
    const { store } = await open({ changeAfter: 1 }, { concurrency: 1 });
    try {
      await store.read(0, new Uint8Array(512));
      await assert.rejects(store.read(4096, new Uint8Array(512)), (err: unknown) => err instanceof VdiskError && err.code === 'EIO' && /'s3:\/\/bkt\/disk\.img' changed while it was read/.test(err.message));
    } finally {
      await store.close();
    }
  });

  it('a server that ignores Range is EUNSUPPORTED; a read of the whole object takes its 200', async () => {
    const { store } = await open({ noRanges: true });
    try {
      await assert.rejects(store.read(10, new Uint8Array(10)), (err: unknown) => err instanceof VdiskError && err.code === 'EUNSUPPORTED');
      assert.deepEqual(await readAll(store), DATA);
    } finally {
      await store.close();
    }
  });

  it('reads past the end read zeros and ask nothing past it; writes are refused; a closed store refuses reads', async () => {
    const { server, store } = await open({});
    const into = new Uint8Array(100).fill(9);
    assert.equal(await store.read(DATA.length - 10, into), 10);
    assert.deepEqual(into.subarray(0, 10), DATA.subarray(DATA.length - 10));
    assert.ok(into.subarray(10).every((b) => b === 0));
    assert.equal(await store.read(DATA.length + 1, into), 0);
    assert.ok(server.seen.every((r) => Number(/-(\d+)$/.exec(r.range ?? '')?.[1] ?? 0) < DATA.length));
    await assert.rejects(store.write(0, into), { code: 'EPERM' });
    await assert.rejects(store.truncate(0), { code: 'EPERM' });
    await store.close();
    await assert.rejects(store.read(0, into), { code: 'EIO' });
  });
});
