/**
 * Request buffers start on a page boundary where the native module can tell
 * where memory sits (core/page-buffer.ts), and the whole buffer comes back
 * from the view a pool hands out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { nativeAddon } from '../../../src/core/native-addon.js';
import { sharedPageBuffer, wholePageBuffer } from '../../../src/core/page-buffer.js';

const pageOffset = (nativeAddon as { pageOffset?: (view: Uint8Array) => number } | undefined)?.pageOffset;
if (!pageOffset) console.warn('\n*** page-buffer: the native module is not loaded: alignment checks SKIPPED ***\n');

describe('sharedPageBuffer', () => {
  it('gives shared memory of the size asked, on a page boundary', { skip: !pageOffset }, () => {
    for (const size of [1, 4095, 4096, 65536, 2 * 1024 * 1024 + 512]) {
      const buf = sharedPageBuffer(size);
      assert.equal(buf.length, size);
      assert.ok(buf.buffer instanceof SharedArrayBuffer);
      assert.equal(pageOffset!(buf), 0, `size ${size}`);
      assert.equal(pageOffset!(buf.subarray(Math.min(100, size - 1))), Math.min(100, size - 1));
      // Writable to its last byte, and zeroed as SharedArrayBuffer memory is.
      buf[size - 1] = 7;
      assert.equal(buf[0], size === 1 ? 7 : 0);
    }
  });

  it('is given back whole from a view that starts where it starts', () => {
    const buf = sharedPageBuffer(8192);
    const whole = wholePageBuffer(buf.subarray(0, 100));
    assert.equal(whole.byteOffset, buf.byteOffset);
    assert.equal(whole.length, 8192);
    whole[8191] = 9;
    assert.equal(buf[8191], 9);
  });

  it('measures where a view sits within its page', { skip: !pageOffset }, () => {
    const plain = new Uint8Array(new SharedArrayBuffer(3 * 4096));
    const at = pageOffset!(plain);
    assert.ok(at >= 0 && at < 4096);
    assert.equal(pageOffset!(plain.subarray(4096)), at);
    assert.throws(() => pageOffset!(new Uint16Array(4) as unknown as Uint8Array), /pageOffset/);
  });
});
