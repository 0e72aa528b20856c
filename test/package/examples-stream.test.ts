/**
 * examples/stream-upload.ts against a local HTTP server that stores what it
 * is sent: the request carries the exact length first, and the stored file
 * is the source's image (qcow2, plain and compressed).
 */
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';

import { upload } from '../../examples/stream-upload.js';
import { check, compare, create, open } from '../../src/index.js';

describe('examples/stream-upload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vdisk-stream-upload-'));
  const source = join(dir, 'disk.raw');
  const lengths = new Map<string, number>();
  let server: Server;
  let base = '';

  before(async () => {
    await create(source, { format: 'raw', size: '6M' });
    const dev = await open(source, { readOnly: false });
    await dev.write(65536, new Uint8Array(200_000).fill(0xa5));
    await dev.write(5 * 1024 * 1024, new Uint8Array(4096).map((_, i) => i & 0xff));
    await dev.close();
    server = createServer((req, res) => {
      const name = join(dir, (req.url ?? '/x').slice(1));
      lengths.set(name, Number(req.headers['content-length']));
      pipeline(req, createWriteStream(name)).then(
        () => res.writeHead(201).end(),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const compress of [false, true]) {
    it(`uploads a qcow2${compress ? ' with compressed clusters' : ''} with its length first`, async () => {
      const name = compress ? 'c.qcow2' : 'p.qcow2';
      const sent = await upload(source, `${base}/${name}`, 'qcow2', compress);
      const stored = join(dir, name);
      assert.equal(lengths.get(stored), sent);
      assert.equal(statSync(stored).size, sent);
      assert.equal((await compare(source, stored)).identical, true);
      const report = await check(stored);
      assert.equal(report.corruptions ?? 0, 0);
      assert.equal(report.leaks ?? 0, 0);
    });
  }
});
