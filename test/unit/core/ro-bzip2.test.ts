/**
 * The bounded bzip2 decoder against the bzip2 CLI: every level, block
 * boundaries, long runs, and the failures libbzip2 reports (as QEMU's
 * dmg-bz2 module sees them): wrong length, bad CRC, truncation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Bzip2Error, decodeBzip2 } from '../../../src/core/bzip2.js';
import { bzip2, pattern } from '../../helpers/ro-images.js';

const text = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => 'the quick brown fox jumps over the lazy dog '.charCodeAt((i * 7 + (i >> 9)) % 44));

describe('bzip2 decoder', () => {
  const inputs: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['one byte', Uint8Array.of(0)],
    ['runs of 4 and 5 (the run-length count byte)', Uint8Array.from([1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])],
    ['random', pattern(20000, 5)],
    ['one long run', new Uint8Array(300000).fill(0x41)],
    ['text over several 100k blocks', text(350000)],
    ['every byte value', Uint8Array.from({ length: 70000 }, (_, i) => (i * 131) & 0xff)],
  ];
  for (const [label, data] of inputs) {
    it(`decodes ${label} at levels 1 and 9`, () => {
      for (const level of [1, 9]) assert.deepEqual(decodeBzip2(bzip2(data, level), data.length), data);
    });
  }

  it('ignores what follows the first stream, as one BZ2_bzDecompress call does', () => {
    const a = text(5000);
    const z = bzip2(a);
    const joined = new Uint8Array(z.length * 2);
    joined.set(z);
    joined.set(z, z.length);
    assert.deepEqual(decodeBzip2(joined, a.length), a);
  });

  it('fails unless the stream decodes to exactly the length asked for', () => {
    const a = pattern(10000, 2);
    const z = bzip2(a);
    assert.throws(() => decodeBzip2(z, a.length - 1), Bzip2Error);
    assert.throws(() => decodeBzip2(z, a.length + 1), Bzip2Error);
  });

  it('refuses truncated streams, bad magic and CRC mismatches', () => {
    const a = text(50000);
    const z = bzip2(a);
    assert.throws(() => decodeBzip2(z.subarray(0, z.length - 6), a.length), Bzip2Error);
    assert.throws(() => decodeBzip2(z.subarray(0, 100), a.length), Bzip2Error);
    const magic = new Uint8Array(z);
    magic[0] = 0x43;
    assert.throws(() => decodeBzip2(magic, a.length), Bzip2Error);
    const crc = new Uint8Array(z);
    crc[10] = (crc[10] as number) ^ 1; // inside the block CRC (bytes 10..13)
    assert.throws(() => decodeBzip2(crc, a.length), /CRC/);
  });
});
