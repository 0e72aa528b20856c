/**
 * FdHandle stands in for Node's FileHandle (node:fs/promises is no longer
 * loaded at start-up): the same results and errors, and the same close
 * rule — a close waits for the handle's operations in flight, so the
 * descriptor is never closed (and perhaps reused by another open) under a
 * read or write, and anything asked after it fails with EBADF.
 */
import assert from 'node:assert/strict';
import fsModule, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open as fspOpen } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FdHandle, lstat, readFile, readlinkBytes, realpathBytes, rename, rm, stat } from '../../../src/io/fs-calls.js';

const dir = mkdtempSync(join(tmpdir(), 'vdisk-fs-calls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('FdHandle', () => {
  it('reads, writes, stats, truncates and syncs as a FileHandle does', async () => {
    const file = join(dir, 'a');
    writeFileSync(file, 'hello world');
    const ours = await FdHandle.open(file, 'r+');
    const theirs = await fspOpen(file, 'r+');
    try {
      const a = new Uint8Array(8);
      const b = new Uint8Array(8);
      assert.deepEqual(await ours.read(a, 1, 7, 6), { bytesRead: 5 });
      assert.equal((await theirs.read(b, 1, 7, 6)).bytesRead, 5);
      assert.deepEqual(a, b);
      assert.deepEqual(await ours.write(new TextEncoder().encode('xWORLDx'), 1, 5, 6), { bytesWritten: 5 });
      assert.equal(readFileSync(file, 'latin1'), 'hello WORLD');
      assert.equal((await ours.stat()).size, (await theirs.stat()).size);
      await ours.truncate(5);
      await ours.datasync();
      await ours.sync();
      assert.equal((await ours.stat()).size, 5);
      await ours.truncate();
      assert.equal((await stat(file)).size, 0);
    } finally {
      await ours.close();
      await theirs.close();
    }
  });

  it('closes after the operations in flight, and refuses any asked later', async () => {
    const file = join(dir, 'b');
    writeFileSync(file, Buffer.alloc(1 << 20, 7));
    const h = await FdHandle.open(file, 'r');
    const fd = h.fd;
    assert.ok(fd >= 0);
    // The descriptor's close(2) must not be asked for while a read(2) is still out: spy on both.
    let ended = 0;
    let endedAtClose = -1;
    const realRead = fsModule.read;
    const realClose = fsModule.close;
    fsModule.read = ((...args: unknown[]) => {
      const done = args.pop() as (...r: unknown[]) => void;
      (realRead as (...a: unknown[]) => void)(...args, (...r: unknown[]) => {
        ended++;
        done(...r);
      });
    }) as typeof fsModule.read;
    fsModule.close = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      endedAtClose = ended;
      realClose(fd, cb);
    }) as typeof fsModule.close;
    syncBuiltinESMExports();
    try {
      const reads = Array.from({ length: 8 }, () => h.read(new Uint8Array(1 << 20), 0, 1 << 20, 0));
      const closing = h.close();
      assert.equal(h.close(), closing, 'a second close is the first');
      for (const r of await Promise.all(reads)) assert.equal(r.bytesRead, 1 << 20);
      await closing;
    } finally {
      fsModule.read = realRead;
      fsModule.close = realClose;
      syncBuiltinESMExports();
    }
    assert.equal(endedAtClose, 8, 'closed after every read in flight ended');
    assert.equal(h.fd, -1);
    await assert.rejects(h.read(new Uint8Array(1), 0, 1, 0), { code: 'EBADF', syscall: 'read' });
    await assert.rejects(h.stat(), { code: 'EBADF', syscall: 'fstat' });
  });

  it("fails with node:fs's errors", async () => {
    const missing = join(dir, 'missing');
    await assert.rejects(FdHandle.open(missing, 'r'), { code: 'ENOENT', syscall: 'open', path: missing });
    await assert.rejects(stat(missing), { code: 'ENOENT', syscall: 'stat' });
    await assert.rejects(lstat(missing), { code: 'ENOENT', syscall: 'lstat' });
    await assert.rejects(readFile(missing, 'utf8'), { code: 'ENOENT' });
    await assert.rejects(rename(missing, join(dir, 'x')), { code: 'ENOENT', syscall: 'rename' });
    await rm(missing, { force: true });
    await assert.rejects(rm(missing), { code: 'ENOENT' });
  });

  it('reads names back as bytes', async () => {
    const file = join(dir, 'c');
    writeFileSync(file, '');
    const link = join(dir, 'c-link');
    (await import('node:fs')).symlinkSync('c', link);
    assert.deepEqual(await readlinkBytes(link), Buffer.from('c'));
    assert.deepEqual(await realpathBytes(link), Buffer.from(await (await import('node:fs/promises')).realpath(file)));
  });
});
