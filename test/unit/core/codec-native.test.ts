/**
 * The native codecs (native/codec.c) against the portable kernels
 * (codec-kernels.ts), which define the semantics: same bytes out, the same
 * units accepted and refused, and numbers outside the buffers refused
 * rather than followed.
 */
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';

import { encodeUnit, loadZstd, runCodecTask, type CodecName, type DecodePiece, type DecodeResult } from '../../../src/core/codec-kernels.js';
import { nativeCodecCan, runNativeCodec } from '../../../src/core/codec-native.js';
import { concat } from '../../helpers/bytes.js';

const available = nativeCodecCan({ op: 'encode', codec: 'deflate-raw', data: new Uint8Array(1) });
if (!available) console.warn('\n*** codec-native: the native module is not built: native codec tests SKIPPED ***\n');

function text(n: number, seed: number): Uint8Array {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; ) i += b.write(`unit ${seed} line ${i}\n`, i, 'latin1');
  return new Uint8Array(b);
}

/** Decodes one unit both ways; returns [native, portable] results with their outputs. */
async function both(codec: CodecName, input: Uint8Array, unit: number, pieces?: DecodePiece[]): Promise<[DecodeResult, DecodeResult]> {
  const ps = pieces ?? [{ at: 0, length: input.length, outAt: 0, from: 0, count: unit }];
  const outLength = ps.reduce((n, p) => Math.max(n, p.outAt + p.count), 0);
  const task = { op: 'decode', codec, unit, input, pieces: ps, outLength } as const;
  const native = (await runNativeCodec(task)) as DecodeResult;
  const portable = (await runCodecTask(task)) as DecodeResult;
  return [native, portable];
}

describe('native codecs', { skip: !available && 'the native module is not built' }, () => {
  it('decode what the portable kernels decode, for each codec', async () => {
    await loadZstd();
    for (const codec of ['deflate-raw', 'zlib', 'zstd'] as const) {
      if (!nativeCodecCan({ op: 'encode', codec, data: new Uint8Array(1) })) continue;
      const units = [text(65536, 1), text(65536, 2)];
      const packed = units.map((u) => encodeUnit(codec, u));
      const input = concat(packed);
      const pieces = [
        { at: 0, length: packed[0]!.length, outAt: 0, from: 0, count: 65536 },
        { at: packed[0]!.length, length: packed[1]!.length, outAt: 65536, from: 1000, count: 30000 },
      ];
      const [n, p] = await both(codec, input, 65536, pieces);
      assert.equal(n.failed, undefined, codec);
      assert.deepEqual(n.produced, p.produced, codec);
      assert.deepEqual(n.out, p.out, codec);
    }
  });

  it('accept and refuse the same units as the portable kernels', async () => {
    await loadZstd();
    const unit = 4096;
    const cases: [string, CodecName, Uint8Array][] = [
      ['a qcow2 stream longer than the cluster keeps its first cluster', 'deflate-raw', deflateRawSync(text(3 * unit, 3), { windowBits: 12 })],
      ['a short qcow2 cluster fails', 'deflate-raw', deflateRawSync(text(100, 4))],
      ['a truncated qcow2 stream fails', 'deflate-raw', deflateRawSync(text(unit, 5)).subarray(0, 40)],
      ['garbage fails', 'deflate-raw', new Uint8Array(64).fill(0xff)],
      ['a vmdk grain shorter than a grain is zero-filled', 'zlib', deflateSync(Buffer.alloc(100, 1))],
      ['a vmdk grain of exactly a grain', 'zlib', deflateSync(Buffer.from(text(unit, 6)))],
      ['a vmdk grain longer than a grain fails', 'zlib', deflateSync(Buffer.alloc(unit + 1, 1))],
      ['a vmdk grain with a bad checksum fails', 'zlib', (() => { const b = new Uint8Array(deflateSync(Buffer.alloc(100, 2))); b[b.length - 1]! ^= 1; return b; })()],
      ['zstd with a skippable frame first', 'zstd', concat([new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]), encodeUnit('zstd', text(unit, 7))])],
      ['zstd split over two frames', 'zstd', concat([encodeUnit('zstd', text(unit / 2, 8)), encodeUnit('zstd', text(unit / 2, 9))])],
      ['zstd with a bad magic fails', 'zstd', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])],
      ['zstd ending before a full cluster fails', 'zstd', encodeUnit('zstd', text(100, 10))],
      ['zstd larger than a cluster fails', 'zstd', encodeUnit('zstd', text(2 * unit, 11))],
      ['a truncated zstd frame fails', 'zstd', encodeUnit('zstd', text(unit, 12)).subarray(0, 20)],
    ];
    for (const [what, codec, input] of cases) {
      if (!nativeCodecCan({ op: 'encode', codec, data: new Uint8Array(1) })) continue;
      const [n, p] = await both(codec, input, unit);
      assert.equal(n.failed === undefined, p.failed === undefined, `${what}: native ${n.failed?.message ?? 'ok'}, portable ${p.failed?.message ?? 'ok'}`);
      assert.deepEqual(n.produced, p.produced, what);
      if (!n.failed) assert.deepEqual(n.out, p.out, what);
    }
  });

  it('refuses pieces outside their buffers instead of reading or writing there', async () => {
    const input = encodeUnit('deflate-raw', text(4096, 13));
    const bad: DecodePiece[][] = [
      [{ at: input.length + 1, length: 1, outAt: 0, from: 0, count: 4096 }],
      [{ at: 0, length: input.length + 1, outAt: 0, from: 0, count: 4096 }],
      [{ at: 0, length: input.length, outAt: 1, from: 0, count: 4096 }],
      [{ at: 0, length: input.length, outAt: 0, from: 4000, count: 200 }],
    ];
    for (const pieces of bad) {
      const r = (await runNativeCodec({ op: 'decode', codec: 'deflate-raw', unit: 4096, input, pieces, out: new Uint8Array(4096), outLength: 4096 })) as DecodeResult;
      assert.equal(r.failed?.index, 0, JSON.stringify(pieces));
    }
  });

  it('encodes zlib units byte for byte as node:zlib does', async () => {
    const data = text(65536, 14);
    for (const codec of ['deflate-raw', 'zlib'] as const) {
      const r = (await runNativeCodec({ op: 'encode', codec, data })) as { out: Uint8Array };
      assert.deepEqual(r.out, encodeUnit(codec, data), codec);
    }
  });
});
