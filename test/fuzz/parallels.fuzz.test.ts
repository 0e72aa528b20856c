/**
 * Fuzz: mutated Parallels headers, BATs and format extensions of small
 * images built in memory (vdisk's create; a v1 variant; and a format
 * extension with a dirty bitmap built to docs/interop/parallels.txt).
 * Every case must end in a typed VdiskError or a clean open, read, check,
 * bitmap read and write, within a time bound. `VDISK_FUZZ_ITERATIONS`
 * raises the case count (default 240).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { IoError, VdiskError } from '../../src/core/errors.js';
import { parallelsDriver } from '../../src/formats/parallels/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { iterations, mutate, rng } from '../helpers/fuzz.js';

const ITERATIONS = iterations(240);
const CASE_MS = 20_000; // a hang guard, generous for a loaded machine
const CLUSTER = 4096;
const SIZE = 1024 * 1024 + 5 * 512;
const BITMAP = '0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9';

/** Most bytes a fuzzed image may grow to: a hostile BAT can place clusters terabytes out (sparse in a file, not in memory). */
const STORE_CAP = 64 * 1024 * 1024;

/** A memory store that fails as a full disk does past {@link STORE_CAP}. */
class BoundedStore extends MemoryStore {
  override async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset + data.length > STORE_CAP) throw new IoError('No space left on device');
    return super.write(offset, data);
  }

  override async truncate(size: number): Promise<void> {
    if (size > STORE_CAP) throw new IoError('No space left on device');
    return super.truncate(size);
  }
}

const noExternal = { open: () => Promise.reject(new VdiskError('EUNSAFE', 'user', 'no external files in fuzz')) };

/** A v2 image: 4 KiB clusters, a few written. */
async function makeV2(): Promise<Uint8Array> {
  const store = new MemoryStore('base.hds');
  await parallelsDriver.create!(store, { size: SIZE, options: new Map([['cluster_size', CLUSTER]]), filename: 'base.hds', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'parallels', readOnly: false });
  await dev.write(100, new Uint8Array(5000).fill(0x5a));
  await dev.write(700 * 1024 + 7, new Uint8Array(3000).fill(0xa5));
  await dev.close();
  return store.bytes().slice();
}

/** The same image with the v1 signature: BAT entries in sectors. */
function toV1(v2: Uint8Array): Uint8Array {
  const buf = v2.slice();
  buf.set(Buffer.from('WithoutFreeSpace', 'latin1'), 0);
  const v = new DataView(buf.buffer);
  const tracks = v.getUint32(28, true);
  for (let i = 0; i < v.getUint32(32, true); i++) v.setUint32(64 + i * 4, v.getUint32(64 + i * 4, true) * tracks, true);
  return buf;
}

/**
 * The image with a format extension cluster and one bitmap data cluster
 * appended: the bitmap marks granules 0..9 and 100 dirty.
 */
function withExtension(v2: Uint8Array): { bytes: Uint8Array; bits: Uint8Array } {
  const sectors = SIZE / 512;
  const granularity = 8 * 512;
  const nbits = Math.ceil(SIZE / granularity);
  const bits = new Uint8Array(Math.ceil(nbits / 8));
  for (const b of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]) bits[b >> 3] = (bits[b >> 3] as number) | (1 << (b & 7));
  const extAt = v2.length;
  const dataAt = extAt + CLUSTER;
  const ext = new Uint8Array(CLUSTER);
  const e = new DataView(ext.buffer);
  e.setBigUint64(0, 0xab234cef23dcea87n, true);
  e.setBigUint64(24, 0x20385fae252cb34an, true);
  e.setUint32(40, 32 + 8, true);
  e.setBigUint64(48, BigInt(sectors), true);
  ext.set(Buffer.from(BITMAP.replaceAll('-', ''), 'hex'), 56);
  e.setUint32(72, 8, true);
  e.setUint32(76, 1, true);
  e.setBigUint64(80, BigInt(dataAt / 512), true);
  ext.set(createHash('md5').update(ext.subarray(24)).digest(), 8);
  const data = new Uint8Array(CLUSTER);
  data.set(bits);
  const bytes = new Uint8Array(dataAt + CLUSTER);
  bytes.set(v2);
  bytes.set(ext, extAt);
  bytes.set(data, dataAt);
  new DataView(bytes.buffer).setBigUint64(56, BigInt(extAt / 512), true);
  return { bytes, bits };
}

/** Opens, reads (the first MiB and the last bytes), checks and reads bitmaps; writes when not read-only. */
async function exercise(bytes: Uint8Array, readOnly: boolean): Promise<void> {
  const dev = await BlockDevice.open(new BoundedStore('fuzz.hds', bytes), { format: 'parallels', readOnly, check: !readOnly });
  try {
    await dev.read(0, new Uint8Array(Math.min(dev.size, 1024 * 1024)));
    if (dev.size > 4096) await dev.read(dev.size - 4096, new Uint8Array(4096));
    const image = dev.top.image;
    await image.checker?.check({ repair: readOnly ? 'none' : 'all', log: () => undefined });
    for (const b of image.bitmaps?.list() ?? []) await image.bitmaps?.read(b.name);
    if (!readOnly && dev.size > 0) {
      await dev.write(dev.size - 1, new Uint8Array(1).fill(1));
      await dev.write(0, new Uint8Array(3000).fill(2));
    }
  } finally {
    await dev.close();
  }
}

const HEADER_FIELDS = [16, 28, 32, 36, 40, 44, 48, 52, 56, 60];

function mutated(base: Uint8Array, r: () => number, extAt: number): Uint8Array {
  const buf = base.slice();
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    const where = r();
    if (where < 0.45) {
      // a header field or a BAT entry
      const at = r() < 0.6 ? (HEADER_FIELDS[Math.floor(r() * HEADER_FIELDS.length)] as number) : 64 + 4 * Math.floor(r() * 300);
      mutate(buf.subarray(at, at + 8), r, 4);
    } else if (where < 0.75 && extAt > 0) {
      // the extension cluster (its MD5 fixed most of the time, so the features are read)
      mutate(buf.subarray(extAt + 24, extAt + 128), r);
      if (r() < 0.8) buf.set(createHash('md5').update(buf.subarray(extAt + 24, extAt + CLUSTER)).digest(), extAt + 8);
    } else {
      mutate(buf, r);
    }
  }
  return r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
}

describe('parallels fuzz', () => {
  it('the spec-built format extension reads back its dirty bitmap', async () => {
    const { bytes, bits } = withExtension(await makeV2());
    const dev = await BlockDevice.open(new MemoryStore('ext.hds', bytes), { format: 'parallels', readOnly: true });
    try {
      const bitmaps = dev.top.image.bitmaps;
      assert.deepEqual(bitmaps?.list(), [{ name: BITMAP, granularity: 4096, enabled: true, inUse: false }]);
      assert.deepEqual(await bitmaps?.read(BITMAP), bits);
    } finally {
      await dev.close();
    }
  });

  const bases: [string, () => Promise<{ bytes: Uint8Array; extAt: number }>][] = [
    ['v2', async () => ({ bytes: await makeV2(), extAt: 0 })],
    ['v1', async () => ({ bytes: toV1(await makeV2()), extAt: 0 })],
    ['v2 with a format extension', async () => {
      const v2 = await makeV2();
      return { bytes: withExtension(v2).bytes, extAt: v2.length };
    }],
  ];
  for (const [name, make] of bases) {
    it(`mutated ${name} images end in a VdiskError or a clean open, read, check and write`, async () => {
      const { bytes: base, extAt } = await make();
      const r = rng(name.length * 7919);
      const counts = { ok: 0, errors: 0 };
      for (let i = 0; i < ITERATIONS / bases.length; i++) {
        const bytes = mutated(base, r, extAt);
        const started = Date.now();
        try {
          await exercise(bytes, r() < 0.6);
          counts.ok++;
        } catch (err) {
          if (!(err instanceof VdiskError)) throw new Error(`${name} case ${i}: untyped error ${String(err)}`, { cause: err });
          counts.errors++;
        }
        assert.ok(Date.now() - started < CASE_MS, `${name} case ${i} took ${Date.now() - started} ms`);
      }
      assert.ok(counts.ok > 0 && counts.errors > 0, JSON.stringify(counts));
    });
  }
});
