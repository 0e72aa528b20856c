/** File store writes through the native module's single-request pwrite keep the file store's error wording. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FileStore } from '../../../src/io/file-store.js';
import { native } from '../../../src/io/native.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-copy-write-');
after(() => dir.cleanup());

describe('file store writes', () => {
  it('write every byte, at any offset', async () => {
    const file = join(dir.path, 'w.bin');
    const store = await FileStore.open(file, { readOnly: false, create: true });
    try {
      const data = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => i % 251);
      await store.write(12345, data.subarray(5));
      await store.write(0, new Uint8Array(10).fill(9));
      const out = readFileSync(file);
      assert.equal(out.length, 12345 + data.length - 5);
      assert.deepEqual(out.subarray(0, 10), Buffer.alloc(10, 9));
      assert.ok(out.subarray(12345).equals(Buffer.from(data.subarray(5))));
    } finally {
      await store.close();
    }
  });

  it('word a failed write as qemu-img does', { skip: native?.writeAt && existsSync('/dev/full') ? false : 'needs the native module and /dev/full' }, async () => {
    const store = await FileStore.open('/dev/full', { readOnly: false, allowDevices: true });
    try {
      await assert.rejects(store.write(4096, new Uint8Array(8192).fill(1)), { code: 'EIO', message: "Could not write '/dev/full' at offset 4096: No space left on device" });
    } finally {
      await store.close();
    }
  });
});
