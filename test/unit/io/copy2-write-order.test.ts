/**
 * File store writes through the native module are made without waiting
 * for the one before (no main-thread round trip per write, as a copy's
 * ordered writer needs), yet land one at a time in the order made: a later
 * write to the same bytes wins, and a failed write holds back none after it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FileStore } from '../../../src/io/file-store.js';
import { native } from '../../../src/io/native.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-copy2-order-');
after(() => dir.cleanup());
const skip = native?.writeAt ? false : 'needs the native module';

/** Blocks the main thread (no callbacks, no promise jobs) for `ms`. */
function blockMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('native file store writes', { skip }, () => {
  it('land in the order they were made: the last write to the same bytes wins, across stores', async () => {
    const a = await FileStore.open(join(dir.path, 'a.bin'), { readOnly: false, create: true });
    const b = await FileStore.open(join(dir.path, 'b.bin'), { readOnly: false, create: true });
    try {
      const writes: Promise<void>[] = [];
      for (let i = 1; i <= 200; i++) {
        // Each write overlaps the one before by half, so any reordering shows in the bytes.
        const store = i % 3 === 0 ? b : a;
        writes.push(store.write((i % 4) * 2048, new Uint8Array(8192).fill(i)));
      }
      await Promise.all(writes);
      const expect = (pick: (i: number) => boolean): Buffer => {
        const out = Buffer.alloc(3 * 2048 + 8192);
        for (let i = 1; i <= 200; i++) if (pick(i)) out.fill(i, (i % 4) * 2048, (i % 4) * 2048 + 8192);
        return out;
      };
      assert.ok(readFileSync(join(dir.path, 'a.bin')).equals(expect((i) => i % 3 !== 0)));
      assert.ok(readFileSync(join(dir.path, 'b.bin')).equals(expect((i) => i % 3 === 0)));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('all land while the main thread is busy: none waits for JavaScript to hand it over', async () => {
    const file = join(dir.path, 'busy.bin');
    const store = await FileStore.open(file, { readOnly: false, create: true });
    try {
      const n = 16;
      const writes = Array.from({ length: n }, (_, i) => store.write(i * 4096, new Uint8Array(4096).fill(i + 1)));
      // The main thread runs nothing until every write is on disk (or 10 s pass): a writer that
      // needs it between two writes has landed only the first by then.
      const landed = (): number => {
        const got = readFileSync(file);
        let k = 0;
        while (k < n && got.length >= (k + 1) * 4096 && got[k * 4096 + 4095] === k + 1) k++;
        return k;
      };
      for (let waited = 0; landed() < n && waited < 10_000; waited += 20) blockMainThread(20);
      assert.equal(landed(), n);
      await Promise.all(writes);
    } finally {
      await store.close();
    }
  });

  it('a failed write holds back none of the writes made after it', { skip: existsSync('/dev/full') ? false : 'needs /dev/full' }, async () => {
    const full = await FileStore.open('/dev/full', { readOnly: false, allowDevices: true });
    const file = join(dir.path, 'after-failure.bin');
    const store = await FileStore.open(file, { readOnly: false, create: true });
    try {
      const failed = full.write(0, new Uint8Array(4096).fill(1));
      const later = [store.write(0, new Uint8Array(4096).fill(7)), store.write(4096, new Uint8Array(4096).fill(8))];
      await assert.rejects(failed, { code: 'EIO' });
      await Promise.all(later);
      assert.ok(readFileSync(file).equals(Buffer.concat([Buffer.alloc(4096, 7), Buffer.alloc(4096, 8)])));
    } finally {
      await full.close();
      await store.close();
    }
  });
});
