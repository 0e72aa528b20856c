/**
 * The native NBD reader (native/nbd_reader.c) against a scripted server on
 * a real unix socket: reads land in their buffers whatever the reply order,
 * a server error fails its read only, and every lie (bad magic, unknown or
 * repeated handle, a stream cut short, silence, mutated bytes) ends every
 * read in a typed error within a time bound, with the thread stopped.
 * `VDISK_FUZZ_ITERATIONS` raises the mutation cases (default 150).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { IoError, VdiskError } from '../../src/core/errors.js';
import * as C from '../../src/io/nbd/constants.js';
import type { ExportInfo } from '../../src/io/nbd/handshake.js';
import { NativeReadConnection, nativeReadable } from '../../src/io/nbd/native-reads.js';
import { native } from '../../src/io/native.js';
import { iterations, mutate, rng } from '../helpers/fuzz.js';

const SIZE = 64 * 1024 * 1024;
const INFO: ExportInfo = { size: SIZE, flags: C.FLAG_HAS_FLAGS | C.FLAG_READ_ONLY, minBlock: 1, maxBlock: 32 * 1024 * 1024, structured: false, allocationContext: undefined };
const NAME = 'nbd+unix:///disk?socket=test';

/** The export's bytes: a function of the offset, so any misplaced byte shows. */
function pattern(offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const o = offset + i;
    out[i] = (o * 31 + (o >>> 9) * 7 + (o >>> 17)) & 0xff;
  }
  return out;
}

interface Request {
  readonly type: number;
  readonly handle: Buffer;
  readonly offset: number;
  readonly length: number;
}

/** The server's side of one connection: the requests as they come. */
class ServerSide {
  readonly socket: Socket;
  readonly requests: Request[] = [];
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 28) {
        const b = this.#buf;
        assert.equal(b.readUInt32BE(0), C.REQUEST_MAGIC);
        this.requests.push({ type: b.readUInt16BE(6), handle: Buffer.from(b.subarray(8, 16)), offset: Number(b.readBigUInt64BE(16)), length: b.readUInt32BE(24) });
        this.#buf = b.subarray(28);
      }
      this.#wake?.();
    });
  }
  /** Waits until `n` requests came. */
  async take(n: number): Promise<Request[]> {
    while (this.requests.length < n) await new Promise<void>((r) => (this.#wake = r));
    return this.requests.splice(0, n);
  }
  /** A simple reply, with the data for a successful read. */
  reply(r: Request, error = 0): Buffer {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(C.SIMPLE_REPLY_MAGIC, 0);
    h.writeUInt32BE(error, 4);
    r.handle.copy(h, 8);
    return error ? h : Buffer.concat([h, pattern(r.offset, r.length)]);
  }
}

let dir: string;
let server: Server;
let path: string;
const accepted: ((s: ServerSide) => void)[] = [];

/** A reader connected to the scripted server, and the server's side of it. */
async function open(timeoutMs = 2000, inFlight = 8): Promise<{ conn: NativeReadConnection; peer: ServerSide }> {
  const peer = new Promise<ServerSide>((r) => accepted.push(r));
  const client = connect({ path });
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const fd = nativeReadable(client);
  assert.ok(fd !== undefined, 'the socket exposes its descriptor');
  const conn = new NativeReadConnection(fd, INFO, NAME, inFlight, timeoutMs);
  client.destroy();
  return { conn, peer: await peer };
}

function read(conn: NativeReadConnection, offset: number, length: number): { into: Uint8Array; done: Promise<undefined> } {
  const into = new Uint8Array(length).fill(0xee);
  return { into, done: conn.send({ type: C.CMD_READ, offset, length, into }) };
}

/** Settles within `ms` or fails the test: nothing may hang. */
async function bounded<T>(p: Promise<T>, ms: number, label: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${label}: did not settle in ${ms} ms`)), ms)));
  try {
    return await Promise.race([Promise.allSettled([p]).then((r) => r[0] as PromiseSettledResult<T>), limit]);
  } finally {
    clearTimeout(timer);
  }
}

const available = (native as { nbdReaderStart?: unknown } | undefined)?.nbdReaderStart !== undefined;

describe('native NBD reads', { skip: available ? false : 'native module not built' }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vdisk-nbd-native-'));
    path = join(dir, 's.sock');
    server = createServer((s) => accepted.shift()?.(new ServerSide(s)));
    await new Promise<void>((r) => server.listen(path, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads land in their own buffers whatever order the replies come in', async () => {
    const { conn, peer } = await open();
    const next = rng(11);
    const reads = Array.from({ length: 48 }, () => {
      const length = 1 + Math.floor(next() * 300_000);
      return { offset: Math.floor(next() * (SIZE - length)), length };
    });
    const started = reads.map((r) => read(conn, r.offset, r.length));
    // Answer in batches, each batch shuffled: the reader must match replies by handle.
    for (let answered = 0; answered < reads.length; ) {
      const batch = await peer.take(Math.min(8, reads.length - answered));
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [batch[i], batch[j]] = [batch[j] as Request, batch[i] as Request];
      }
      for (const r of batch) peer.socket.write(peer.reply(r));
      answered += batch.length;
    }
    await Promise.all(started.map((s) => s.done));
    reads.forEach((r, i) => assert.deepEqual((started[i] as { into: Uint8Array }).into, pattern(r.offset, r.length), `read ${i}`));
    await conn.disconnect();
    // NBD_CMD_DISC went out before the socket closed.
    const [disc] = await peer.take(1);
    assert.equal(disc?.type, C.CMD_DISC);
  });

  it("a server's error fails its read only, in qemu's words", async () => {
    const { conn, peer } = await open();
    const a = read(conn, 0, 4096);
    const b = read(conn, 4096, 4096);
    const [ra, rb] = await peer.take(2);
    peer.socket.write(peer.reply(ra as Request, 28));
    peer.socket.write(peer.reply(rb as Request));
    await assert.rejects(a.done, (e: unknown) => e instanceof IoError && e.message === 'No space left on device' && e.offset === 0 && e.file === NAME);
    await b.done;
    assert.deepEqual(b.into, pattern(4096, 4096));
    assert.equal(conn.failure, undefined);
    conn.kill(undefined);
  });

  const lies: [string, (peer: ServerSide, r: Request) => void, RegExp][] = [
    ['a bad reply magic', (p, r) => p.socket.write(Buffer.from(p.reply(r)).fill(0xde, 0, 4)), /NBD protocol error from 'nbd\+unix:.*': invalid reply magic 0xdededede/],
    ['an unknown handle', (p, r) => p.socket.write(Buffer.from(p.reply(r)).fill(0x7f, 8, 16)), /reply to unknown handle/],
    ['a second reply to one request', (p, r) => p.socket.write(Buffer.concat([p.reply(r), p.reply(r)])), /reply to unknown handle/],
    ['a stream cut in the data', (p, r) => p.socket.end(p.reply(r).subarray(0, 16 + 100)), /closed by the server/],
    ['a stream cut in the header', (p, r) => p.socket.end(p.reply(r).subarray(0, 7)), /closed by the server/],
    ['silence', () => undefined, /timed out: no answer from the server in 150 ms/],
  ];
  for (const [label, lie, message] of lies) {
    it(`${label} fails every read in flight, typed, and the connection`, async () => {
      const { conn, peer } = await open(150);
      const reads = [read(conn, 0, 65536), read(conn, 65536, 65536)];
      reads[0]?.done.catch(() => undefined);
      const [first] = await peer.take(2);
      // The first read may complete before the lie (a repeated reply); the second never does.
      lie(peer, first as Request);
      const settled = await bounded(reads[1]?.done as Promise<undefined>, 3000, label);
      assert.equal(settled.status, 'rejected');
      const reason = (settled as PromiseRejectedResult).reason as unknown;
      assert.ok(reason instanceof VdiskError && message.test(reason.message), `${label}: ${String(reason)}`);
      assert.ok(conn.failure instanceof VdiskError);
      await assert.rejects(read(conn, 0, 512).done, (e: unknown) => e === conn.failure);
      peer.socket.destroy();
    });
  }

  it('kill() fails reads in flight at once and stops the thread', async () => {
    const { conn, peer } = await open(60_000);
    const r = read(conn, 0, 1 << 20);
    await peer.take(1);
    const reason = new IoError('stopped by the test');
    conn.kill(reason);
    const settled = await bounded(r.done, 1000, 'kill');
    assert.ok(settled.status === 'rejected' && settled.reason === reason);
    peer.socket.destroy();
  });

  it('mutated reply streams end in success or typed errors, never a hang', async () => {
    const next = rng(2026);
    const cases = iterations(150);
    let errors = 0;
    for (let i = 0; i < cases; i++) {
      const { conn, peer } = await open(100, 4);
      const reads = [read(conn, Math.floor(next() * 1e6), 1 + Math.floor(next() * 9000)), read(conn, Math.floor(next() * 1e6), 1 + Math.floor(next() * 9000))];
      const reqs = await peer.take(2);
      const bytes = Buffer.concat(reqs.map((r) => peer.reply(r, next() < 0.1 ? 5 : 0)));
      // Most mutations hit the headers, where a lie can do harm; some cut the stream short.
      for (let m = 1 + Math.floor(next() * 3); m > 0; m--) mutate(bytes, next, next() < 0.7 ? 32 : bytes.length);
      const cut = next() < 0.3 ? Math.floor(next() * bytes.length) : bytes.length;
      if (next() < 0.8) peer.socket.end(bytes.subarray(0, cut));
      else peer.socket.write(bytes.subarray(0, cut));
      // Both watched at once: the second read may fail while the first is still awaited.
      const watched = reads.map((r) => bounded(r.done, 3000, `case ${i}`));
      for (const w of watched) {
        const s = await w;
        if (s.status === 'rejected') {
          assert.ok(s.reason instanceof VdiskError, `case ${i}: untyped ${String(s.reason)}`);
          errors++;
        }
      }
      conn.kill(undefined);
      peer.socket.destroy();
    }
    assert.ok(errors > 0, 'some mutations must be caught');
  });
});
