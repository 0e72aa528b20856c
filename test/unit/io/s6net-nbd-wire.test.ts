/**
 * The NBD wire stops reading when a read completes its reader (io/nbd/wire.ts):
 * net asks for the next buffer before the reader's continuation runs, so a
 * socket that kept reading would take the next reply's header and up to
 * 64 KiB of its payload into the scratch buffer, each copied twice. Stopped,
 * the read after the resume takes only a header's room, and the payload
 * lands in its reader's buffer.
 */
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { ReadRouter, SocketWire } from '../../../src/io/nbd/wire.js';
import { tmpDir } from '../../helpers/qemu.js';
import { pattern } from '../../helpers/ro-images.js';

const dir = tmpDir('vdisk-s6net-wire-');
after(() => dir.cleanup());

describe('s6net: NBD wire stops between replies', () => {
  it('parks the socket when a direct read completes, then reads a header, then the payload in place', async () => {
    const data = pattern(3 * 1024 * 1024, 11);
    const path = join(dir.path, 'park.sock');
    // Sends everything at once when the client asks (once its long read is waiting).
    const server = createServer((c) => {
      c.on('error', () => undefined);
      c.once('data', () => c.end(data));
    });
    await new Promise<void>((r) => server.listen(path, r));
    const router = new ReadRouter();
    // Every buffer the socket read into, and whether the callback let it go on.
    const reads: { size: number; n: number; own: boolean; long: boolean; goOn: boolean }[] = [];
    const long = new Uint8Array(1024 * 1024);
    const next = new Uint8Array(2 * 1024 * 1024 - 28);
    const spy = {
      buffer: router.onread.buffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        const goOn = router.onread.callback(n, buf);
        reads.push({ size: buf.length, n, own: buf.buffer === long.buffer || buf.buffer === next.buffer, long: buf.buffer === long.buffer, goOn });
        return goOn;
      },
    };
    const socket = connect({ path, onread: spy });
    await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
    const wire = new SocketWire(socket, 'park', 5000, router);
    try {
      const done = wire.readInto(long);
      socket.write('go');
      await done;
      // The server sent everything at once: had the socket gone on, the next 64 KiB would sit in the scratch buffer.
      await new Promise((r) => setTimeout(r, 50));
      const header = new Uint8Array(28);
      await wire.readInto(header);
      await wire.readInto(next);
      assert.deepEqual(long, data.subarray(0, long.length));
      assert.deepEqual(header, data.subarray(long.length, long.length + 28));
      assert.deepEqual(next, data.subarray(long.length + 28));
      // (The socket's first buffer is chosen when it connects, before any reader: the scratch buffer.)
      const last = reads.map((r) => r.long).lastIndexOf(true);
      assert.ok(last >= 0, 'the long read went straight into its buffer');
      assert.equal(reads[last]?.goOn, false, 'reading stopped when the long read was complete');
      const after = reads.slice(last + 1);
      assert.ok((after[0]?.size ?? Infinity) <= 64, `the read after the resume offered ${after[0]?.size} bytes`);
      const scratchBytes = after.filter((r) => !r.own).reduce((sum, r) => sum + r.n, 0);
      assert.ok(scratchBytes <= 64, `${scratchBytes} bytes went through the scratch buffer`);
    } finally {
      socket.destroy();
      server.close();
    }
  });
});
