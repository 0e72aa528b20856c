/**
 * Fuzz: mutated dmg trailers and mish blocks, cloop headers and offset
 * tables, Bochs headers, catalogs and bitmaps, and bzip2 streams, built in
 * memory to the formats' specifications. Every case must end in a typed
 * error (VdiskError; Bzip2Error for the bare decoder) or a successful open
 * and read, within a generous bound that only catches hangs.
 * `VDISK_FUZZ_ITERATIONS` raises the case count (default 150 per parser).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { Bzip2Error, decodeBzip2 } from '../../src/core/bzip2.js';
import { VdiskError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { INTERESTING_U32, iterations, mutate, rng } from '../helpers/fuzz.js';
import { bzip2, DMG, makeBochs, makeCloop, makeDmg, pattern } from '../helpers/ro-images.js';

const ITERATIONS = iterations(150);
const CASE_MS = 20_000; // a hang guard, generous for a loaded machine
const READ_CAP = 4 * 1024 * 1024;
const DATA = pattern(64 * 1024, 9);

/** A read that may fail, but only with a typed error (a chunk that cannot be decoded: EIO). */
async function readTyped(dev: BlockDevice, at: number, n: number): Promise<void> {
  if (n <= 0) return;
  await dev.read(at, new Uint8Array(n)).catch((err: unknown) => {
    if (!(err instanceof VdiskError)) throw err;
  });
}

/**
 * Opens read-only (a failure there is the case's typed error) and reads the
 * start in pieces, some middle and the end; a writable open must fail typed.
 */
async function exercise(format: string, bytes: Uint8Array): Promise<void> {
  const dev = await BlockDevice.open(new MemoryStore(`fuzz.${format}`, bytes), { format, readOnly: true, backing: false });
  try {
    const size = dev.size;
    for (let at = 0; at < Math.min(size, READ_CAP); at += 64 * 1024) await readTyped(dev, at, Math.min(64 * 1024, size - at));
    for (const at of [Math.floor(size / 2), Math.max(0, size - 4096)]) await readTyped(dev, at, Math.min(4096, size - at));
    await dev.top.image.mapping(0, Math.max(1, size)).catch((err: unknown) => {
      if (!(err instanceof VdiskError)) throw err;
    });
  } finally {
    await dev.close();
  }
  await assert.rejects(BlockDevice.open(new MemoryStore(`fuzz.${format}`, bytes), { format, readOnly: false, backing: false }), VdiskError);
}

async function run(format: string, bases: readonly Uint8Array[], edit: (buf: Uint8Array, r: () => number) => Uint8Array, seed: number): Promise<void> {
  const r = rng(seed);
  const counts = { ok: 0, errors: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const base = bases[i % bases.length] as Uint8Array;
    const bytes = edit(new Uint8Array(base), r);
    const started = Date.now();
    try {
      await exercise(format, bytes);
      counts.ok++;
    } catch (err) {
      if (!(err instanceof VdiskError)) throw new Error(`${format} case ${i}: untyped error ${String(err)}`, { cause: err });
      counts.errors++;
    }
    assert.ok(Date.now() - started < CASE_MS, `${format} case ${i} took ${Date.now() - started} ms`);
  }
  assert.ok(counts.ok > 0 && counts.errors > 0, `${format}: ${JSON.stringify(counts)}`);
}

/** Sets a word at one of `fields` (relative to `base`) to a boundary value, else a random mutation. */
function fieldEdit(fields: readonly number[], little: boolean, base: (buf: Uint8Array) => number = () => 0) {
  return (buf: Uint8Array, r: () => number): Uint8Array => {
    const v = new DataView(buf.buffer);
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      if (r() < 0.7) {
        const at = base(buf) + (fields[Math.floor(r() * fields.length)] as number);
        const val = INTERESTING_U32[Math.floor(r() * INTERESTING_U32.length)] as number;
        if (at >= 0 && at + 8 <= buf.length) {
          if (r() < 0.5) v.setUint32(at, val, little);
          else v.setBigUint64(at, r() < 0.3 ? 0xffffffffffffffffn : BigInt(val) * (r() < 0.5 ? 1n : 512n), little);
        }
      } else mutate(buf, r);
    }
    return r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
  };
}

const KOLY = [0x18, 0x20, 0x28, 0x30, 0xd8, 0xe0, 0x1ec, 0x1e8];
/** mish header fields and the first chunk entries' fields (the mish block starts 4 bytes into the first resource, at 256 + 4). */
const MISH = [0, 8, 0x18, 0xc8, ...[0, 1, 2, 3].flatMap((c) => [0, 8, 0x10, 0x18, 0x20].map((f) => 204 + 40 * c + f))].map((o) => 260 + o);

describe('ro fuzz', () => {
  it('dmg: mutated trailers, resource forks and mish blocks', async () => {
    const chunks = [
      { type: DMG.zlib, sectors: 16, data: DATA.subarray(0, 8192) },
      { type: DMG.raw, sectors: 8, data: DATA.subarray(8192, 12288) },
      { type: DMG.bzip2, sectors: 8, data: DATA.subarray(12288, 16384) },
      { type: DMG.zero, sectors: 8 },
    ];
    const rsrc = makeDmg({ container: 'rsrc', blocks: [{ firstSector: 0, chunks }] });
    const xml = makeDmg({ blocks: [{ firstSector: 0, chunks }, { firstSector: 40, chunks: [{ type: DMG.ignore, sectors: 4 }] }] });
    const fields = fieldEdit(MISH, false);
    // trailer fields are relative to the end of the file
    await run('dmg', [rsrc, xml], (buf, r) => {
      const out = fields(buf, r);
      if (r() < 0.5) {
        const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
        const at = out.length - 512 + (KOLY[Math.floor(r() * KOLY.length)] as number);
        if (at >= 0 && at + 8 <= out.length) v.setBigUint64(at, BigInt(INTERESTING_U32[Math.floor(r() * INTERESTING_U32.length)] as number), false);
      }
      return out;
    }, 0xd1a6);
  });

  it('cloop: mutated headers and offset tables', async () => {
    const bases = [makeCloop(4096, DATA.subarray(0, 20000)), makeCloop(512, DATA.subarray(0, 3000))];
    await run('cloop', bases, fieldEdit([128, 132, 136, 144, 152, 160], false), 0xc100);
  });

  it('bochs: mutated headers, catalogs and bitmaps', async () => {
    const data = new Uint8Array(256 * 1024);
    data.set(DATA.subarray(0, 5000), 3000);
    data.set(DATA.subarray(0, 700), 200000);
    const bases = [makeBochs({ version: 2, diskSize: data.length, extentSize: 8192, data }), makeBochs({ version: 1, diskSize: data.length, extentSize: 4096, data })];
    await run('bochs', bases, fieldEdit([64, 68, 72, 76, 80, 84, 88, 512, 516, 520, 640], true), 0xb0c5);
  });

  it('bzip2: mutated streams decode or fail with Bzip2Error, never past the length asked for', () => {
    const inputs = [DATA.subarray(0, 30000), new Uint8Array(50000).fill(0x41), Uint8Array.from({ length: 40000 }, (_, i) => (i >> 7) & 0xff)];
    const streams = inputs.map((d) => bzip2(d, 1));
    const r = rng(0xb2);
    const counts = { ok: 0, errors: 0 };
    for (let i = 0; i < ITERATIONS * 2; i++) {
      const k = i % inputs.length;
      const buf = new Uint8Array(streams[k] as Uint8Array);
      mutate(buf, r, r() < 0.5 ? 64 : buf.length);
      const want = (inputs[k] as Uint8Array).length + (r() < 0.2 ? Math.floor(r() * 100) - 50 : 0);
      try {
        assert.equal(decodeBzip2(r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf, Math.max(0, want)).length, Math.max(0, want));
        counts.ok++;
      } catch (err) {
        if (!(err instanceof Bzip2Error)) throw new Error(`bzip2 case ${i}: ${String(err)}`, { cause: err });
        counts.errors++;
      }
    }
    assert.ok(counts.errors > 0, JSON.stringify(counts));
  });
});
