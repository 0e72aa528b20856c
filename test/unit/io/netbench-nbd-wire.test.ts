/**
 * The NBD wire's direct reads (io/nbd/wire.ts, ReadRouter): a reader owed
 * a long read gets the socket's bytes in its own buffer (no copy through a
 * per-read allocation), everything else goes through the scratch buffer,
 * and the byte stream the reader sees is the one the peer sent, whatever
 * the mix of short and long reads, the bytes that come before the wire is
 * made, and the pauses when the reader falls behind.
 */
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { ReadRouter, SocketWire } from '../../../src/io/nbd/wire.js';
import { tmpDir } from '../../helpers/qemu.js';
import { pattern } from '../../helpers/ro-images.js';

const dir = tmpDir('vdisk-nbd-wire-');
after(() => dir.cleanup());

/**
 * A unix-socket server that sends `data` (in pieces, so reads split anywhere)
 * on connect, or once `go` is called when `hold`; and a client wired to it.
 */
async function pair(name: string, data: Uint8Array, router: ReadRouter | undefined, hold = false): Promise<{ wire: SocketWire; go(): void; close(): void }> {
  const path = join(dir.path, `${name}.sock`);
  let go = (): void => undefined;
  const server = createServer((c) => {
    // The client may hang up before everything is sent.
    c.on('error', () => undefined);
    go = () => step();
    let at = 0;
    const step = (): void => {
      if (at >= data.length) return void c.end();
      const n = Math.min(data.length - at, 1 + ((at * 7919) % 300_000));
      c.write(data.subarray(at, at + n), step);
      at += n;
    };
    if (!hold) step();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const socket = connect({ path, ...(router ? { onread: router.onread } : {}) });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  // Let the first bytes arrive before the wire exists: they must wait for it.
  await new Promise((r) => setTimeout(r, 20));
  const wire = new SocketWire(socket, name, 5000, router);
  return { wire, go: () => go(), close: () => (socket.destroy(), server.close()) };
}

/** Reads `sizes` in turn (the rest of the stream last) and checks every byte. */
async function readAll(wire: SocketWire, data: Uint8Array, sizes: number[]): Promise<void> {
  let at = 0;
  for (const size of sizes) {
    const into = new Uint8Array(Math.min(size, data.length - at));
    await wire.readInto(into);
    assert.deepEqual(into, data.subarray(at, at + into.length), `bytes ${at}..${at + into.length}`);
    at += into.length;
    // A slow reader now and then: the socket is paused and resumed under it.
    if (size === 3) await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(at, data.length);
}

describe('netbench: NBD wire direct reads', () => {
  const data = pattern(24 * 1024 * 1024 + 12345, 7);
  // Headers and payloads as an NBD reply stream mixes them: 4, 16, then a few MiB, and so on.
  const sizes: number[] = [];
  for (let left = data.length; left > 0; ) {
    for (const s of [4, 16, 3, 2 * 1024 * 1024 + 8, 20, 70_000, 1]) {
      sizes.push(s);
      left -= s;
    }
  }

  it('delivers the stream intact through the router (direct and scratch reads mixed)', async () => {
    const { wire, close } = await pair('direct', data, new ReadRouter());
    try {
      await readAll(wire, data, sizes);
    } finally {
      close();
    }
  });

  it('delivers the same stream without a router (data events, as under TLS)', async () => {
    const { wire, close } = await pair('plain', data, undefined);
    try {
      await readAll(wire, data, sizes);
    } finally {
      close();
    }
  });

  it('hands a long pending read its own buffer, a short one the scratch buffer', async () => {
    const router = new ReadRouter();
    const scratch = router.onread.buffer();
    const { wire, go, close } = await pair('choice', data, router, true);
    try {
      const long = new Uint8Array(1024 * 1024);
      const done = wire.readInto(long);
      const next = router.onread.buffer();
      assert.equal(next.buffer, long.buffer);
      assert.equal(next.length, long.length);
      go();
      await done;
      assert.deepEqual(long, data.subarray(0, long.length));
      const short = new Uint8Array(4);
      const pending = wire.readInto(short);
      // The scratch buffer, cut to the rest of the short read and the next reply's header.
      const offered = router.onread.buffer();
      assert.equal(offered.buffer, scratch.buffer);
      assert.ok(offered.length >= short.length && offered.length < 1024, `${offered.length} bytes offered`);
      await pending;
      assert.deepEqual(short, data.subarray(long.length, long.length + 4));
    } finally {
      close();
    }
  });
});
