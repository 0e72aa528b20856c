/**
 * examples/http-range-store.ts, the custom ByteStore of docs/custom-bytestore.md,
 * against a local HTTP server that serves a qcow2 file by byte ranges: info
 * and convert read the image through it, and the copy has the same content.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { HttpRangeStore, main } from '../../examples/http-range-store.js';
import { compare, create, open } from '../../src/index.js';

/** Serves `file` at /disk.qcow2, honouring single Range requests as a static file server does. */
function serve(file: string): Server {
  return createServer((req, res) => {
    if (req.url !== '/disk.qcow2') return void res.writeHead(404).end();
    const bytes = readFileSync(file);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), bytes.length - 1);
    if (start > end) return void res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1 });
    res.end(bytes.subarray(start, end + 1));
  });
}

describe('examples/http-range-store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vdisk-http-store-'));
  const image = join(dir, 'disk.qcow2');
  let server: Server;
  let base = '';

  before(async () => {
    await create(image, { format: 'qcow2', size: '4M' });
    const dev = await open(image, { readOnly: false });
    await dev.write(65536, new Uint8Array(65536).fill(0xa5));
    await dev.write(3 * 1024 * 1024, new Uint8Array(512).fill(7));
    await dev.close();
    server = serve(image);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs info and convert through the store, and the copy equals the image', async () => {
    const target = join(dir, 'copy.qcow2');
    const lines = await main(`${base}/disk.qcow2`, target);
    assert.deepEqual(lines, [
      `${base}/disk.qcow2: qcow2, ${statSync(image).size} bytes`,
      `${target}: qcow2, 4194304 bytes, 69632 bytes of data`,
    ]);
    const same = await compare(image, target);
    assert.equal(same.identical, true);
  });

  it('reads past the end as zeros and refuses writes', async () => {
    const store = await HttpRangeStore.open(`${base}/disk.qcow2`);
    try {
      const tail = new Uint8Array(1024).fill(1);
      assert.equal(await store.read(store.length - 512, tail), 512);
      assert.ok(tail.subarray(512).every((b) => b === 0));
      await assert.rejects(store.write(), { code: 'EUNSUPPORTED' });
    } finally {
      await store.close();
    }
  });

  it('a missing image is ENOENT', async () => {
    await assert.rejects(HttpRangeStore.open(`${base}/nothing.qcow2`), { code: 'ENOENT' });
  });
});
