/**
 * The bounded bzip2 decoder against the bzip2 CLI: every level, block
 * boundaries, long runs, and the failures libbzip2 reports (as QEMU's
 * dmg-bz2 module sees them): wrong length, bad CRC, truncation. The
 * streaming decoder (wrapped uploads) gives the same bytes in pieces,
 * follows concatenated streams and stops at trailing garbage as bzip2 -d.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Bzip2Error, decodeBzip2, decodeBzip2Stream } from '../../../src/core/bzip2.js';
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

/** Feeds `data` to the streaming decoder in `chunk`-byte pieces and joins what it yields. */
async function streamed(data: Uint8Array, chunk: number, piece?: number): Promise<{ out: Uint8Array; pieces: number[] }> {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < data.length; i += chunk) yield data.slice(i, i + chunk);
  }
  const parts: Uint8Array[] = [];
  for await (const p of decodeBzip2Stream(chunks(), piece)) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { out, pieces: parts.map((p) => p.length) };
}

describe('bzip2 streaming decoder', () => {
  it('gives the same bytes whatever the input chunks, in pieces of the size asked for', async () => {
    const data = new Uint8Array(700000);
    data.set(text(350000));
    data.set(pattern(50000, 3), 600000);
    for (const level of [1, 9]) {
      const z = bzip2(data, level);
      for (const chunk of [1, 7, 4096, z.length]) {
        const { out, pieces } = await streamed(z, chunk, 65536);
        assert.deepEqual(out, data, `level ${level}, chunks of ${chunk}`);
        assert.ok(pieces.slice(0, -1).every((n) => n === 65536));
      }
    }
  });

  it('inflates long runs (a 900k block of zeros is ~45 MB) in bounded pieces', async () => {
    const zeros = new Uint8Array(48 * 1024 * 1024);
    const { out, pieces } = await streamed(bzip2(zeros, 9), 65536, 1 << 20);
    assert.equal(out.length, zeros.length);
    assert.ok(out.every((b) => b === 0));
    assert.ok(Math.max(...pieces) <= 1 << 20);
  });

  it('follows concatenated streams and ignores trailing garbage, as bzip2 -d', async () => {
    const a = text(5000);
    const b = pattern(3000, 9);
    const za = bzip2(a, 1);
    const zb = bzip2(b, 9);
    const joined = new Uint8Array([...za, ...zb, 0x00, 0x11, 0x22]);
    assert.deepEqual((await streamed(joined, 100)).out, new Uint8Array([...a, ...b]));
  });

  it('refuses truncated streams, bad magic and CRC mismatches', async () => {
    const a = text(50000);
    const z = bzip2(a);
    await assert.rejects(streamed(z.subarray(0, z.length - 6), 1000), Bzip2Error);
    await assert.rejects(streamed(z.subarray(0, 100), 10), Bzip2Error);
    const magic = new Uint8Array(z);
    magic[0] = 0x43;
    await assert.rejects(streamed(magic, 1000), /bad stream header/);
    const crc = new Uint8Array(z);
    crc[10] = (crc[10] as number) ^ 1;
    await assert.rejects(streamed(crc, 1000), /CRC/);
  });
});
