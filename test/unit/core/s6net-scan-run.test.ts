/**
 * scanRun (core/bytes.ts), which convert runs over every byte it reads from
 * a network source, finds exactly the runs a plain byte-by-byte scan finds:
 * zero runs that end anywhere in a large slice, data whose granules are
 * zero except in the bytes its quick checks skip, short last granules and
 * views that start at any offset of their buffer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { scanRun } from '../../../src/core/bytes.js';
import { rng, sparsePattern } from '../../helpers/fuzz.js';

/** The definition: granules from the start while each has the first granule's zero-ness. */
function reference(buf: Uint8Array, granule: number): { zero: boolean; length: number } {
  const zeroAt = (from: number, to: number): boolean => buf.subarray(from, to).every((b) => b === 0);
  let off = Math.min(granule, buf.length);
  const zero = zeroAt(0, off);
  while (off < buf.length && zeroAt(off, Math.min(off + granule, buf.length)) === zero) off = Math.min(off + granule, buf.length);
  return { zero, length: off };
}

/** Zero and data pieces of random lengths (helpers/fuzz.ts). */
const pattern = (length: number, rand: () => number): Uint8Array => sparsePattern(length, rand, { largest: 200_000, oneByte: 0.4, randomData: true });

describe('scanRun', () => {
  it('matches a byte-by-byte scan on random zero/data patterns, granules and offsets', () => {
    const rand = rng(18);
    for (let round = 0; round < 400; round++) {
      const length = 1 + Math.floor(rand() * (round % 4 === 0 ? 600_000 : 20_000));
      const granule = [1, 7, 512, 4096, 65536][Math.floor(rand() * 5)] as number;
      const skew = Math.floor(rand() * 16);
      const backing = new Uint8Array(length + skew);
      backing.set(pattern(length, rand), skew);
      const view = backing.subarray(skew);
      for (let at = 0; at < view.length; ) {
        const got = scanRun(view.subarray(at), granule);
        assert.deepEqual(got, reference(view.subarray(at), granule), `round ${round}, granule ${granule}, at ${at} of ${view.length}`);
        at += got.length;
        if (round % 8 !== 0) break;
      }
    }
  });

  it('ends a zero run at the granule holding the first non-zero byte, wherever it lies', () => {
    for (const where of [0, 1, 511, 512, 65535, 65536, 65537, 100_000, 131_071, 131_072, 199_999]) {
      const buf = new Uint8Array(200_000);
      buf[where] = 9;
      for (const granule of [512, 4096]) assert.deepEqual(scanRun(buf, granule), reference(buf, granule), `byte ${where}, granule ${granule}`);
    }
    assert.deepEqual(scanRun(new Uint8Array(200_001), 512), { zero: true, length: 200_001 });
  });

  it('ends a data run at the first zero granule even when the granules before it are zero at their quick-check bytes', () => {
    const buf = new Uint8Array(8192).fill(0);
    for (let g = 0; g < 8; g++) buf[g * 512 + 100] = 1; // data granules whose first, middle and last bytes are zero
    assert.deepEqual(scanRun(buf, 512), { zero: false, length: 4096 });
  });
});
