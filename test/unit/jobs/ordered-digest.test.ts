/**
 * OrderedDigest keeps pieces that arrive ahead of their turn. Their bytes
 * must be its own copy: a caller's buffer (a pooled request buffer, or a
 * Node Buffer whose slice() is a view) is reused as soon as feed() returns.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { OrderedDigest } from '../../../src/jobs/content-digest.js';

describe('OrderedDigest', () => {
  for (const kind of ['Buffer', 'Uint8Array'] as const) {
    it(`a piece fed ahead of its turn is kept as it was (${kind})`, () => {
      const first = Buffer.alloc(4096, 0x11);
      const second = kind === 'Buffer' ? Buffer.alloc(4096, 0x22) : new Uint8Array(4096).fill(0x22);
      const d = new OrderedDigest('sha256');
      d.feed(4096, 4096, second);
      second.fill(0x99); // the caller reuses its buffer
      d.feed(0, 4096, first);
      const want = createHash('sha256').update(Buffer.alloc(4096, 0x11)).update(Buffer.alloc(4096, 0x22)).digest('hex');
      assert.equal(d.result(8192), `sha256:${want}`);
    });
  }
});
