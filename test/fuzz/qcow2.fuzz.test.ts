/**
 * qcow2 fuzzing: small images built in memory by vdisk's own create and
 * write code, then mutated in the header, L1/L2 tables and refcount
 * structures. Every case must end in a typed VdiskError or a successful
 * open and full read (and, for some, a write), within a time bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import type { OptionValue } from '../../src/formats/driver.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { expectTypedOrOk, iterations, mutate, rng } from '../helpers/fuzz.js';
import { createOn } from '../formats/qcow2/helpers.js';

const SIZE = 2 * 1024 * 1024;
const CASE_TIMEOUT_MS = 20_000; // a hang guard, generous for a loaded machine
const MAX_READ = 8 * 1024 * 1024;

async function buildImage(options: Record<string, OptionValue>): Promise<Uint8Array> {
  const store = new MemoryStore('seed.qcow2');
  await createOn(store, 'seed.qcow2', SIZE, options);
  const dev = await BlockDevice.open(store, { format: 'qcow2', readOnly: false });
  await dev.write(0, new Uint8Array(70000).fill(0xa5));
  await dev.write(1024 * 1024 + 3, new Uint8Array(5000).fill(0x5a));
  await dev.writeZeroes(512 * 1024, 65536);
  await dev.writeCompressed(1536 * 1024, new Uint8Array(65536).fill(0x33));
  await dev.close();
  return store.bytes();
}

/** Regions worth mutating, from the (unmutated) header. */
function regions(img: Uint8Array): Array<[number, number]> {
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const cs = 2 ** v.getUint32(20);
  const l1 = Number(v.getBigUint64(40));
  const reft = Number(v.getBigUint64(48));
  const l2 = Number(v.getBigUint64(l1) & 0x00fffffffffffe00n);
  const rb = Number(v.getBigUint64(reft) & 0xfffffffffffffe00n);
  const out: Array<[number, number]> = [[0, 112], [0, Math.min(cs, 512)], [l1, 64], [reft, 64]];
  if (l2) out.push([l2, 512]);
  if (rb) out.push([rb, 256]);
  return out.filter(([o, n]) => o + n <= img.length);
}

async function exercise(bytes: Uint8Array, write: boolean): Promise<void> {
  const dev = await BlockDevice.open(new MemoryStore('fuzz.qcow2', bytes), { format: 'qcow2', readOnly: !write });
  try {
    const n = Math.min(dev.size, MAX_READ);
    const buf = new Uint8Array(Math.min(n, 1024 * 1024));
    for (let off = 0; off < n; off += buf.length) await dev.read(off, buf.subarray(0, Math.min(buf.length, n - off)));
    if (dev.size > n) await dev.read(dev.size - 512, new Uint8Array(512));
    await dev.top.image.describe();
    if (write && dev.size >= 200000) {
      await dev.write(4096 + 17, new Uint8Array(100000).fill(1));
      await dev.writeZeroes(0, 65536, { mayUnmap: true });
      await dev.discard(131072, 65536);
    }
  } finally {
    await dev.close();
  }
}

function withTimeout<T>(p: Promise<T>, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: took longer than ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const SEEDS: Array<Record<string, OptionValue>> = [
  {},
  { compat: '0.10' },
  { cluster_size: 4096, refcount_bits: 1 },
  { cluster_size: 512, refcount_bits: 64 },
  { extended_l2: true, cluster_size: 16384 },
];

describe('qcow2 fuzz (typed error or success)', () => {
  it('survives mutated headers, L1/L2 tables and refcount structures', async () => {
    const total = iterations(300);
    const images = await Promise.all(SEEDS.map((o) => buildImage(o)));
    const next = rng(0x51c0);
    let ok = 0;
    let errors = 0;
    for (let i = 0; i < total; i++) {
      const base = images[i % images.length]!;
      const rs = regions(base);
      const [start, len] = rs[Math.floor(next() * rs.length)]!;
      const bytes = base.slice();
      const rounds = 1 + Math.floor(next() * 3);
      for (let r = 0; r < rounds; r++) mutate(bytes.subarray(start, start + len), next);
      const write = next() < 0.3;
      const label = `case ${i} (seed image ${i % images.length}, region ${start}+${len}, write=${write})`;
      const res = await withTimeout(expectTypedOrOk(label, () => exercise(bytes, write)), label);
      if (res === 'ok') ok++;
      else errors++;
    }
    assert.equal(ok + errors, total);
    assert.ok(errors > 0, 'some mutations are detected');
  });

  it('survives truncated images', async () => {
    const base = await buildImage({});
    for (const n of [0, 4, 8, 71, 72, 103, 104, 111, 512, 65536, 65536 * 3 + 7]) {
      await expectTypedOrOk(`truncated to ${n}`, () => exercise(base.slice(0, n), false));
    }
  });
});
