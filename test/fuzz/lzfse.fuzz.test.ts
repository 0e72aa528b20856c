/**
 * Fuzz: mutated LZFSE streams (every block kind, headers and payloads,
 * truncations, header counts set to boundary values) must decode to exactly
 * the length asked for or fail with CorruptImageError, quickly; and a dmg
 * whose lzfse chunks are mutated must open and read or fail typed.
 * `VDISK_FUZZ_ITERATIONS` raises the case count (default 400 streams, 60 images).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { CorruptImageError, VdiskError } from '../../src/core/errors.js';
import { decodeLzfse } from '../../src/core/lzfse.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { INTERESTING_U32, iterations, mutate, rng } from '../helpers/fuzz.js';
import { encodeLzfse } from '../helpers/lzfse-fse-encode.js';
import { DMG, makeDmg, pattern } from '../helpers/ro-images.js';

const ITERATIONS = iterations(400);
const CASE_MS = 20_000; // a hang guard, generous for a loaded machine

const INPUTS = [
  pattern(40 * 1024, 4),
  new TextEncoder().encode('lzfse fuzz base text, lzfse fuzz base text; '.repeat(400)),
  Uint8Array.from({ length: 30000 }, (_, i) => (i % 300 < 150 ? 0 : (i * 13) & 0x3f)),
];
const BASES = INPUTS.flatMap((d) => [encodeLzfse(d, ['v2']), encodeLzfse(d, ['v1']), encodeLzfse(d, ['lzvn']), encodeLzfse(d, ['v2', 'lzvn', 'raw', 'v1'], 8192)].map((s) => ({ stream: s, size: d.length })));

/** Sets a header field of the first block to a boundary value (counts, sizes, packed words). */
function headerEdit(buf: Uint8Array, r: () => number): void {
  const at = [4, 8, 12, 16, 20, 24, 28, 32, 40, 44][Math.floor(r() * 10)] as number;
  if (at + 4 > buf.length) return;
  new DataView(buf.buffer, buf.byteOffset).setUint32(at, INTERESTING_U32[Math.floor(r() * INTERESTING_U32.length)] as number, true);
}

describe('lzfse fuzz', () => {
  it('mutated streams decode to the length asked for or fail with CorruptImageError', () => {
    const r = rng(0x1f5e);
    const counts = { ok: 0, errors: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const base = BASES[i % BASES.length] as { stream: Uint8Array; size: number };
      let buf = new Uint8Array(base.stream);
      const kind = r();
      if (kind < 0.5) mutate(buf, r);
      else if (kind < 0.8) headerEdit(buf, r);
      else buf = buf.subarray(0, Math.floor(r() * buf.length));
      const want = r() < 0.8 ? base.size : Math.floor(r() * 2 * base.size);
      const started = Date.now();
      try {
        assert.equal(decodeLzfse(buf, want).length, want);
        counts.ok++;
      } catch (err) {
        if (!(err instanceof CorruptImageError)) throw new Error(`lzfse case ${i}: untyped ${String(err)}`, { cause: err });
        counts.errors++;
      }
      assert.ok(Date.now() - started < CASE_MS, `lzfse case ${i} took ${Date.now() - started} ms`);
    }
    assert.ok(counts.errors > 0, 'some mutations must be refused');
  });

  it('dmg images with mutated lzfse chunks open and read, or fail typed', async () => {
    const data = INPUTS[0] as Uint8Array;
    const img = makeDmg({ blocks: [{ firstSector: 0, chunks: [{ type: DMG.lzfse, sectors: 40, data: data.subarray(0, 40 * 512) }, { type: DMG.lzfse, sectors: 40, stored: encodeLzfse(data.subarray(40 * 512), ['lzvn', 'v2'], 4096) }] }] });
    const r = rng(0xd3a6);
    for (let i = 0; i < Math.max(20, Math.floor(ITERATIONS / 6)); i++) {
      const buf = new Uint8Array(img);
      // the chunks' streams open the file: most mutations land there
      mutate(buf, r, r() < 0.8 ? 40 * 1024 : buf.length);
      const started = Date.now();
      try {
        const dev = await BlockDevice.open(new MemoryStore('fuzz.dmg', buf), { format: 'dmg', readOnly: true, backing: false });
        try {
          await dev.read(0, new Uint8Array(Math.min(dev.size, 64 * 1024))).catch((err: unknown) => {
            if (!(err instanceof VdiskError)) throw err;
          });
        } finally {
          await dev.close();
        }
      } catch (err) {
        if (!(err instanceof VdiskError)) throw new Error(`dmg case ${i}: untyped ${String(err)}`, { cause: err });
      }
      assert.ok(Date.now() - started < CASE_MS, `dmg case ${i} took ${Date.now() - started} ms`);
    }
  });
});
