/**
 * A flush syncs only what changed since the last one (qemu's
 * write_gen/flushed_gen): a writable open that wrote nothing — a check with
 * nothing to repair, a refused snapshot — leaves the file's writeback alone,
 * as qemu-img does, and every kind of change is still made durable.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FdHandle } from '../../../src/io/fs-calls.js';
import { FileStore } from '../../../src/io/file-store.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-file-store-flush-');
after(() => dir.cleanup());

/** Runs `fn` counting fdatasync calls. */
async function syncs(fn: () => Promise<void>): Promise<number> {
  const original = FdHandle.prototype.datasync;
  let n = 0;
  FdHandle.prototype.datasync = function (this: FdHandle) {
    n++;
    return original.call(this);
  };
  try {
    await fn();
  } finally {
    FdHandle.prototype.datasync = original;
  }
  return n;
}

describe('FileStore.flush', () => {
  const file = join(dir.path, 'f.img');

  it('does not sync a file nothing was written to', async () => {
    writeFileSync(file, new Uint8Array(65536));
    const store = await FileStore.open(file, { readOnly: false });
    assert.equal(await syncs(() => store.flush()), 0);
    await store.close();
  });

  it('syncs once after each change, whatever the kind', async () => {
    writeFileSync(file, new Uint8Array(65536));
    const store = await FileStore.open(file, { readOnly: false });
    const changes: (() => Promise<unknown>)[] = [
      () => store.write(0, new Uint8Array([1, 2, 3])),
      () => store.truncate(131072),
      () => store.zeroRange(4096, 4096, true),
      () => store.preallocate(131072, 4096, 'falloc'),
    ];
    for (const change of changes) {
      await change();
      assert.equal(await syncs(async () => {
        await store.flush();
        await store.flush();
      }), 1);
    }
    await store.close();
  });
});
