/**
 * The codec pool: workers and the calling thread give the same bytes, a
 * failing unit is reported by index, queued tasks whose signal aborts are
 * dropped, and spans group nearby units only.
 */
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { decodeUnit, encodeUnit, loadZstd, runCodecTask, type DecodeResult, type EncodeResult } from '../../../src/core/codec-kernels.js';
import { closeCodecPool, runCodec } from '../../../src/core/codec-pool.js';
import { decodeInto, groupSpans } from '../../../src/core/compressed-run.js';

after(() => closeCodecPool());

function text(n: number, seed: number): Uint8Array {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; ) i += b.write(`unit ${seed} line ${i}\n`, i, 'latin1');
  return new Uint8Array(b);
}

describe('codec pool', () => {
  it('decodes a span of zlib, zstd and vmdk units into place, on workers as on the calling thread', async () => {
    await loadZstd();
    const units = [text(4096, 1), text(4096, 2), text(4096, 3)];
    for (const codec of ['deflate-raw', 'zlib', 'zstd'] as const) {
      const packed = units.map((u) => encodeUnit(codec, u));
      const input = new Uint8Array(packed.reduce((n, p) => n + p.length, 0));
      let at = 0;
      const pieces = packed.map((p, i) => {
        input.set(p, at);
        // the middle unit is copied from its second half only
        const piece = { at, length: p.length, outAt: i === 0 ? 0 : i === 1 ? 4096 : 6144, from: i === 1 ? 2048 : 0, count: i === 1 ? 2048 : 4096 };
        at += p.length;
        return piece;
      });
      const want = new Uint8Array(10240);
      want.set(units[0] as Uint8Array, 0);
      want.set((units[1] as Uint8Array).subarray(2048), 4096);
      want.set(units[2] as Uint8Array, 6144);
      const viaPool = new Uint8Array(10240);
      const r = await decodeInto(codec, 4096, input, pieces, viaPool);
      assert.equal(r.failed, undefined);
      assert.deepEqual(viaPool, want, codec);
      const shared = new Uint8Array(new SharedArrayBuffer(10240));
      await decodeInto(codec, 4096, input, pieces, shared);
      assert.deepEqual(new Uint8Array(shared), want, `${codec} into shared memory`);
      const here = (await runCodecTask({ op: 'decode', codec, unit: 4096, input, pieces, outLength: 10240 })) as DecodeResult;
      assert.deepEqual(here.out, want, `${codec} on the calling thread`);
    }
  });

  it('reports the first unit that does not decode, by index, with the units before it decoded', async () => {
    const good = deflateRawSync(text(4096, 4), { windowBits: 12 });
    const short = deflateRawSync(text(1000, 5), { windowBits: 12 });
    const input = new Uint8Array(good.length + short.length);
    input.set(good);
    input.set(short, good.length);
    const pieces = [
      { at: 0, length: good.length, outAt: 0, from: 0, count: 4096 },
      { at: good.length, length: short.length, outAt: 4096, from: 0, count: 4096 },
    ];
    const r = await decodeInto('deflate-raw', 4096, input, pieces, new Uint8Array(8192));
    assert.equal(r.failed?.index, 1);
    assert.deepEqual(r.produced, [4096]);
  });

  it('a vmdk grain may inflate to less than a grain (zero-filled), never to more', async () => {
    const unit = new Uint8Array(4096).fill(9);
    assert.equal(await decodeUnit('zlib', deflateSync(Buffer.alloc(100, 1)), unit), 100);
    assert.ok(unit.subarray(100).every((b) => b === 0));
    await assert.rejects(decodeUnit('zlib', deflateSync(Buffer.alloc(4097, 1)), unit));
  });

  it('encodes on a worker what the calling thread encodes', async () => {
    const data = text(65536, 6);
    for (const native of ['1', '0']) {
      process.env['VDISK_CODEC_NATIVE'] = native;
      for (const codec of ['deflate-raw', 'zlib', 'zstd'] as const) {
        const copy = new Uint8Array(data);
        const { out } = (await runCodec({ op: 'encode', codec, data: copy }, [copy.buffer])) as EncodeResult;
        // zlib is Node's own on every path; the system's libzstd may pick other bytes than the WASM build: it must decode back.
        if (codec === 'zstd') {
          const back = new Uint8Array(65536);
          await decodeUnit('zstd', out, back);
          assert.deepEqual(back, data, `zstd, native ${native}`);
        } else assert.deepEqual(out, encodeUnit(codec, data), `${codec}, native ${native}`);
      }
    }
    delete process.env['VDISK_CODEC_NATIVE'];
  });

  it('drops a queued task whose signal aborts, and refuses one already aborted', async (t) => {
    // The worker queue (the native module's requests start at once and cannot be dropped).
    process.env['VDISK_CODEC_NATIVE'] = '0';
    t.after(() => delete process.env['VDISK_CODEC_NATIVE']);
    const ac = new AbortController();
    // Enough tasks that some wait in the queue behind the workers.
    const tasks = Array.from({ length: 32 }, () => runCodec({ op: 'encode', codec: 'deflate-raw', data: text(65536, 7) }, [], ac.signal));
    ac.abort();
    const settled = await Promise.allSettled(tasks);
    assert.ok(settled.some((s) => s.status === 'rejected' && (s.reason as { code?: string }).code === 'EABORTED'));
    await assert.rejects(runCodec({ op: 'encode', codec: 'zlib', data: text(10, 8) }, [], ac.signal), { code: 'EABORTED' });
  });

  it('groups units into spans only when they lie close together and in order', () => {
    const u = (hostOffset: number, hostLength = 100): { hostOffset: number; hostLength: number } => ({ hostOffset, hostLength });
    const spans = groupSpans([u(1000), u(1100), u(1250), u(500), u(100_000)], 64);
    assert.deepEqual(
      spans.map((s) => [s.start, s.end, s.units.length]),
      [
        [1000, 1350, 3],
        [500, 600, 1],
        [100_000, 100_100, 1],
      ],
    );
  });
});
