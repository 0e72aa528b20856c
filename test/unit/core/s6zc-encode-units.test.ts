/**
 * encodeUnitsOnPool: a run of units compressed in one native request gives
 * what the units compressed one by one give (the portable path, which
 * VDISK_CODEC_NATIVE=0 selects): the same packed bytes, a size per unit,
 * 0 for a unit that does not compress below a unit, -1 for a zero unit
 * when asked to skip them; and the native module refuses numbers that do
 * not fit its buffers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeUnit, loadZstd } from '../../../src/core/codec-kernels.js';
import { nativeCodecCan } from '../../../src/core/codec-native.js';
import { encodeUnitsOnPool } from '../../../src/core/codec-pool.js';
import { nativeAddon } from '../../../src/core/native-addon.js';
import { rng } from '../../helpers/fuzz.js';

const UNIT = 4096;

/** Text, noise, zeros and zeros with one byte, one kind per unit. */
function units(): Uint8Array {
  const next = rng(11);
  const b = Buffer.alloc(UNIT * 8);
  for (let i = 0; i < UNIT; ) i += b.write(`unit line ${i}\n`, i, 'latin1');
  for (let i = UNIT; i < 2 * UNIT; i++) b[i] = Math.floor(next() * 256);
  b[3 * UNIT + 17] = 1;
  for (let i = 5 * UNIT; i < 6 * UNIT; ) i += b.write(`more ${i} `, i, 'latin1');
  return new Uint8Array(b);
}

async function run(codec: 'deflate-raw' | 'zstd', data: Uint8Array, skipZeros: boolean, portable: boolean): Promise<{ packed: Uint8Array; sizes: number[] }> {
  const before = process.env['VDISK_CODEC_NATIVE'];
  if (portable) process.env['VDISK_CODEC_NATIVE'] = '0';
  try {
    const out = new Uint8Array(data.length);
    const sizes = new Int32Array(data.length / UNIT);
    const n = await encodeUnitsOnPool(codec, data, UNIT, skipZeros, out, sizes);
    return { packed: out.subarray(0, n), sizes: [...sizes] };
  } finally {
    if (before === undefined) delete process.env['VDISK_CODEC_NATIVE'];
    else process.env['VDISK_CODEC_NATIVE'] = before;
  }
}

describe('compressing a run of units at once', () => {
  for (const codec of ['deflate-raw', 'zstd'] as const) {
    it(`${codec}: packs what one unit at a time makes`, async () => {
      await loadZstd();
      const data = units();
      for (const skipZeros of [true, false]) {
        const got = await run(codec, data, skipZeros, false);
        const portable = await run(codec, data, skipZeros, true);
        assert.deepEqual(got.sizes, portable.sizes);
        assert.ok(Buffer.from(got.packed).equals(Buffer.from(portable.packed)));
        // Each packed unit is what encoding that unit alone gives.
        let pos = 0;
        for (const [i, n] of got.sizes.entries()) {
          const unit = data.subarray(i * UNIT, (i + 1) * UNIT);
          const alone = encodeUnit(codec, unit);
          if (n > 0) assert.ok(Buffer.from(got.packed.subarray(pos, pos + n)).equals(Buffer.from(alone)), `unit ${i}`);
          else if (n === 0) assert.ok(alone.length >= UNIT, `unit ${i} is stored plain only when it does not compress`);
          else assert.ok(skipZeros && unit.every((b) => b === 0), `unit ${i} is skipped only when it is zeros`);
          pos += Math.max(0, n);
        }
        assert.equal(got.sizes[1], 0, 'noise is stored plain');
        assert.equal(got.sizes[2], skipZeros ? -1 : got.sizes[2]);
        assert.ok((got.sizes[3] as number) > 0, 'one byte in zeros is data');
      }
    });
  }

  it('a run larger than one native request packs as one', async () => {
    await loadZstd();
    // 104 units of 4 KiB: several requests, whose parts are moved together.
    const data = new Uint8Array(Buffer.concat(Array.from({ length: 13 }, (_, i) => Buffer.from(units()).fill(i, 6 * UNIT + i, 6 * UNIT + 2 * i + 1))));
    for (const codec of ['deflate-raw', 'zstd'] as const) {
      const got = await run(codec, data, true, false);
      const portable = await run(codec, data, true, true);
      assert.deepEqual(got.sizes, portable.sizes);
      assert.ok(Buffer.from(got.packed).equals(Buffer.from(portable.packed)), codec);
    }
  });

  const ops = nativeAddon as { encodeUnits?: (...args: unknown[]) => Promise<number> } | undefined;
  it('the native module refuses buffers that do not fit', { skip: !ops?.encodeUnits || !nativeCodecCan({ op: 'encode', codec: 'deflate-raw', data: new Uint8Array(1) }) }, () => {
    const enc = ops?.encodeUnits as (...args: unknown[]) => Promise<number>;
    const data = new Uint8Array(2 * UNIT);
    assert.throws(() => enc(0, data.subarray(1), UNIT, true, new Uint8Array(2 * UNIT), new Int32Array(2)), /encodeUnits/);
    assert.throws(() => enc(0, data, UNIT, true, new Uint8Array(UNIT), new Int32Array(2)), /encodeUnits/);
    assert.throws(() => enc(0, data, UNIT, true, new Uint8Array(2 * UNIT), new Int32Array(1)), /encodeUnits/);
    assert.throws(() => enc(0, data, UNIT, true, new Uint8Array(2 * UNIT), new Float64Array(2)), /encodeUnits/);
  });
});
