/**
 * vmdk fuzz: mutated headers, tables, grains and descriptors of small
 * in-memory images. Every case ends in a typed VdiskError or a successful
 * open + read, within a time bound. Raise VDISK_FUZZ_ITERATIONS for long runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import type { ExternalFiles, FormatImage } from '../../src/formats/driver.js';
import { vmdkDriver } from '../../src/formats/vmdk/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { buildSparse, descriptorFile, pattern } from '../formats/vmdk/build.js';
import { expectTypedOrOk, iterations, mutate, rng } from '../helpers/fuzz.js';

const G = 65536;
const CASE_MS = 20_000; // a hang guard, generous for a loaded machine
const READ_CAP = 4 * 1024 * 1024;

function noExternal(): ExternalFiles {
  return { open: () => Promise.reject(new Error('not used')) };
}

/** Serves extent files from memory (names as written in the descriptor). */
function memExternal(files: ReadonlyMap<string, Uint8Array>): ExternalFiles {
  return {
    async open(name) {
      const f = files.get(name);
      if (!f) {
        const { NotFoundError } = await import('../../src/core/errors.js');
        throw new NotFoundError(`No such extent '${name}'`);
      }
      return new MemoryStore(name, f, { readOnly: true });
    },
  };
}

async function made(subformat: string, write: (dev: BlockDevice) => Promise<void>): Promise<Uint8Array> {
  const store = new MemoryStore('seed.vmdk');
  await vmdkDriver.create?.(store, { size: 2 << 20, options: new Map([['subformat', subformat]]), filename: 'seed.vmdk', external: noExternal() });
  const dev = await BlockDevice.open(store, { format: 'vmdk', readOnly: false });
  await write(dev);
  await dev.close();
  return store.bytes();
}

async function seeds(): Promise<Uint8Array[]> {
  const sparse = await made('monolithicSparse', async (dev) => {
    await dev.write(0, pattern(100_000, 1));
    await dev.write(G * 20, pattern(G, 2));
  });
  const stream = await made('streamOptimized', async (dev) => {
    await dev.writeCompressed(0, pattern(G, 3));
    await dev.writeCompressed(5 * G, new Uint8Array(G).fill(7));
  });
  const hand = buildSparse({
    capacity: 4096,
    grainSectors: 16,
    gtes: 64,
    redundant: false,
    zeroGrain: true,
    grains: new Map<number, Uint8Array | 'zero'>([[1, pattern(8192, 4)], [2, 'zero'], [70, pattern(8192, 5)]]),
    descriptor: descriptorFile({ createType: 'monolithicSparse', extents: ['RW 4096 SPARSE "x.vmdk"'] }),
  });
  return [sparse, stream, hand];
}

/** Reads `[0, n)` of a driver image the way the block layer does (mapping, then store or inflate). */
async function readThrough(image: FormatImage, n: number): Promise<void> {
  let pos = 0;
  while (pos < n) {
    const extents = await image.mapping(pos, n - pos);
    assert.ok(extents.length > 0 && extents[0]?.offset === pos, 'mapping must cover a prefix');
    for (const e of extents) {
      assert.ok(e.length > 0 && e.offset + e.length <= n);
      if (e.kind === 'data') await e.store.read(e.hostOffset, new Uint8Array(e.length));
      else if (e.kind === 'compressed') await image.readCompressed?.(e, new Uint8Array(image.granularity));
      pos = e.offset + e.length;
    }
  }
}

/** Opens `image` and reads it (capped), with a deadline. */
async function openAndRead(bytes: Uint8Array, external: ExternalFiles = noExternal()): Promise<void> {
  const work = (async () => {
    const image = await vmdkDriver.open(new MemoryStore('fuzz.vmdk', bytes, { readOnly: true }), { readOnly: true, filename: 'fuzz.vmdk', external });
    try {
      await image.describe();
      await readThrough(image, Math.min(image.virtualSize, READ_CAP));
      if (image.virtualSize > READ_CAP) await image.mapping(image.virtualSize - 512, 512);
    } finally {
      await image.close();
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case exceeded ${CASE_MS} ms`)), CASE_MS);
  });
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('vmdk fuzz', () => {
  it('mutated sparse and stream images fail typed or read', async () => {
    const list = await seeds();
    const next = rng(0x766d646b);
    const total = iterations(240);
    const counts = { ok: 0, error: 0 };
    for (let i = 0; i < total; i++) {
      const seed = list[i % list.length] as Uint8Array;
      const img = seed.slice();
      const r = next();
      // header, descriptor area, tables, or anywhere
      const region = r < 0.35 ? 96 : r < 0.55 ? 2048 : r < 0.8 ? 70_000 : img.length;
      const rounds = 1 + Math.floor(next() * 3);
      for (let k = 0; k < rounds; k++) mutate(img, next, region);
      if (next() < 0.1) {
        const cut = Math.floor(next() * img.length);
        counts[await expectTypedOrOk(`case ${i} (truncated)`, () => openAndRead(img.subarray(0, cut)))]++;
        continue;
      }
      counts[await expectTypedOrOk(`case ${i}`, () => openAndRead(img))]++;
    }
    assert.ok(counts.ok > 0 && counts.error > 0, JSON.stringify(counts));
  });

  it('mutated descriptor files fail typed or read', async () => {
    const next = rng(0x64657363);
    const files = new Map<string, Uint8Array>([
      ['a.bin', pattern(64 * 1024, 1)],
      ['s.vmdk', buildSparse({ capacity: 256, grainSectors: 16, gtes: 16, redundant: true, grains: new Map([[3, pattern(8192, 2)]]) })],
    ]);
    const base = descriptorFile({ createType: 'monolithicFlat', extents: ['RW 128 FLAT "a.bin" 0', 'RW 256 SPARSE "s.vmdk"', 'RW 64 ZERO', 'RW 16 VMFS "a.bin"'] });
    const total = iterations(60);
    for (let i = 0; i < total; i++) {
      const text = Buffer.from(base, 'latin1');
      mutate(text, next);
      await expectTypedOrOk(`descriptor case ${i}`, () => openAndRead(text, memExternal(files)));
    }
    // the unmutated descriptor reads
    assert.equal(await expectTypedOrOk('base', () => openAndRead(Buffer.from(base, 'latin1'), memExternal(files))), 'ok');
  });
});

