/**
 * The raw HTTP/1.1 client of plain-HTTP ranged reads against a hand-written
 * server: heads split across reads, chunked and close-delimited bodies,
 * Content-Length bodies read straight into the caller's buffers, keep-alive
 * reuse, and a server closing mid-body (a TransientError, then a retry).
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, describe, it } from 'node:test';

import { TransientError } from '../../src/io/http/exchange.js';
import { RawPool } from '../../src/io/http/raw-http.js';
import { HttpStore } from '../../src/net.js';

const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 13 + (i >> 8)) % 251));

/** What the server sends for each request, in order; `pieces` are written apart so the client sees them in separate reads. */
type Answer = (req: string, n: number) => (Buffer | string)[];

interface Server {
  readonly url: string;
  /** Connections accepted so far. */
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function serve(answer: Answer): Promise<Server> {
  const sockets = new Set<net.Socket>();
  const s: Server = { url: '', connections: 0, requests: [], close: async () => {} };
  const server = net.createServer((socket) => {
    s.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let text = '';
    const answerAll = async (): Promise<void> => {
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const req = text.slice(0, end);
        text = text.slice(end + 4);
        s.requests.push(req);
        for (const piece of answer(req, s.requests.length - 1)) {
          if (piece === 'CLOSE') {
            socket.destroy();
            return;
          }
          socket.write(piece);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    socket.on('data', (d) => {
      text += d.toString('latin1');
      void answerAll();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  Object.assign(s, {
    url: `http://127.0.0.1:${port}/disk.raw`,
    close: () => {
      for (const x of sockets) x.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
  servers.push(s);
  return s;
}

/** `[first, last]` of a request's Range header. */
function rangeOf(req: string): [number, number] {
  const m = /range: bytes=(\d+)-(\d+)/i.exec(req);
  return m ? [Number(m[1]), Number(m[2])] : [0, BODY.length - 1];
}

/** A 206 of the asked range with Content-Length, its head cut into single bytes for the first 40 bytes. */
const partial: Answer = (req) => {
  const [a, b] = rangeOf(req);
  const head = `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${a}-${b}/${BODY.length}\r\nContent-Length: ${b - a + 1}\r\nETag: "v1"\r\n\r\n`;
  return [...head.slice(0, 40).split(''), head.slice(40), BODY.subarray(a, b + 1)];
};

function pool(s: Server): RawPool {
  return new RawPool(new URL(s.url), 5000);
}

describe('net-httpperf: the raw HTTP client', () => {
  it('parses a head split across reads and reads a Content-Length body into the target, reusing the connection', async () => {
    const s = await serve(partial);
    const p = pool(s);
    for (const [a, b] of [[0, 99_999], [100_000, 299_999]] as const) {
      const res = await p.request('GET', '/disk.raw', { range: `bytes=${a}-${b}` }, undefined);
      assert.equal(res.statusCode, 206);
      assert.equal(res.headers['etag'], '"v1"');
      const into = new Uint8Array(b - a + 1);
      let sunk = 0;
      const got = await res.readBody(into.length, (chunk) => (sunk += chunk.length), (at) => into.subarray(at));
      assert.equal(got, into.length);
      assert.equal(sunk, 0, 'no bytes went through the chunk path');
      assert.deepEqual(Buffer.from(into), BODY.subarray(a, b + 1));
    }
    assert.equal(s.connections, 1, 'keep-alive: one connection for both requests');
    assert.match(s.requests[0] as string, /^GET \/disk\.raw HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    p.close();
  });

  it('decodes a chunked body split anywhere (sizes, data, CRLFs, trailer)', async () => {
    const s = await serve(() => ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r', '\nhel', 'lo\r\n', '6;ext=1\r\n world\r\n0\r\n', 'X-T: 1\r\n\r\n']);
    const p = pool(s);
    for (let i = 0; i < 2; i++) {
      const res = await p.request('GET', '/disk.raw', {}, undefined);
      const parts: Buffer[] = [];
      const got = await res.readBody(100, (chunk) => parts.push(Buffer.from(chunk)));
      assert.equal(got, 11);
      assert.equal(Buffer.concat(parts).toString(), 'hello world');
    }
    assert.equal(s.connections, 1, 'the connection is reused after a chunked body');
    p.close();
  });

  it('reads a close-delimited body to the end, then opens a new connection', async () => {
    const s = await serve(() => ['HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such', ' file', 'CLOSE']);
    const p = pool(s);
    for (let i = 0; i < 2; i++) {
      const res = await p.request('GET', '/disk.raw', {}, undefined);
      assert.equal(res.statusCode, 404);
      const parts: Buffer[] = [];
      await res.readBody(100, (chunk) => parts.push(Buffer.from(chunk)));
      assert.equal(Buffer.concat(parts).toString(), 'no such file');
    }
    assert.equal(s.connections, 2);
    p.close();
  });

  it('refuses malformed heads and chunk sizes as Node\'s own parser does (a body whose end is unknown is never read to the close)', async () => {
    const heads: [string, string, RegExp][] = [
      ['a Content-Length with junk', 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello', /bad Content-Length '12abc'/],
      ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello', /bad Content-Length '5, 7'/],
      ['a Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', /bad Content-Length/],
      ['a line without a colon', 'HTTP/1.1 200 OK\r\nGarbage line\r\nContent-Length: 5\r\n\r\nhello', /bad header line 'Garbage line'/],
      ['a folded line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued: x\r\nContent-Length: 5\r\n\r\nhello', /bad header line '  continued: x'/],
      ['a space in a name', 'HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 5\r\n\r\nhello', /bad header line 'X A: 1'/],
    ];
    for (const [label, head, message] of heads) {
      const s = await serve(() => [head]);
      const p = pool(s);
      await assert.rejects(p.request('GET', '/disk.raw', {}, undefined), (err) => err instanceof TransientError && message.test(err.message), label);
      p.close();
    }
    const s = await serve(() => ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5zz\r\nhello\r\n0\r\n\r\n']);
    const p = pool(s);
    const res = await p.request('GET', '/disk.raw', {}, undefined);
    await assert.rejects(res.readBody(100, () => {}), (err) => err instanceof TransientError && /bad chunk size '5zz'/.test(err.message));
    p.close();
  });

  it('a server closing mid-body is a TransientError naming how far it got; a body longer than allowed is refused', async () => {
    const s = await serve((_req, n) => {
      if (n === 0) return ['HTTP/1.1 206 Partial Content\r\nContent-Length: 1000\r\n\r\n', Buffer.alloc(400), 'CLOSE'];
      return ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789'];
    });
    const p = pool(s);
    const res = await p.request('GET', '/disk.raw', {}, undefined);
    const into = new Uint8Array(1000);
    await assert.rejects(res.readBody(1000, () => {}, (at) => into.subarray(at)), (err) => err instanceof TransientError && /closed after 400 bytes/.test(err.message));
    const long = await p.request('GET', '/disk.raw', {}, undefined);
    await assert.rejects(long.readBody(5, () => {}), (err) => err instanceof TransientError && /longer than the 5 bytes/.test(err.message));
    p.close();
  });

  it('HttpStore retries a read whose connection closed mid-body and returns the right bytes', async () => {
    let cut = true;
    const s = await serve((req, n) => {
      if (/^HEAD /.test(req)) return [`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nAccept-Ranges: bytes\r\nETag: "v1"\r\n\r\n`];
      const [a, b] = rangeOf(req);
      if (b - a + 1 >= 262_144 && cut) {
        cut = false;
        return [`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${a}-${b}/${BODY.length}\r\nContent-Length: ${b - a + 1}\r\n\r\n`, BODY.subarray(a, a + 1000), 'CLOSE'];
      }
      return partial(req, n);
    });
    const store = await HttpStore.open(s.url, { retries: 3 });
    try {
      const into = new Uint8Array(280_000);
      await store.read(10_000, into);
      assert.deepEqual(Buffer.from(into), BODY.subarray(10_000, 290_000));
      assert.ok(s.requests.filter((r) => r.startsWith('GET')).length >= 2, 'the read was retried');
      assert.ok(s.requests.some((r) => /if-range: "v1"/i.test(r)), 'reads are pinned to the ETag');
    } finally {
      await store.close();
    }
  });
});
