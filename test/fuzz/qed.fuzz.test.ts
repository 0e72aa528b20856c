/**
 * Fuzz: mutated QED headers, L1/L2 tables and random bytes of small images
 * made in memory by vdisk's own create code. Every case must end in a
 * typed VdiskError or a successful open, read, check (and, writable, a
 * write and a repairing check), within a time bound.
 * `VDISK_FUZZ_ITERATIONS` raises the case count (default 300).
 */
import { describe, it } from 'node:test';

import { fuzzCases, noExternal, xorshift } from '../helpers/fuzz.js';

import { BlockDevice } from '../../src/block/device.js';
import { qedDriver } from '../../src/formats/qed/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const ITERATIONS = Number(process.env['VDISK_FUZZ_ITERATIONS'] ?? 300);
/** Most guest bytes a case reads: a mutated size may claim terabytes. */
const READ_CAP = 4 * 1024 * 1024;

/** A 4 KiB-cluster image with two-cluster tables, data in two L2 spans and a zero cluster. */
async function makeBase(): Promise<Uint8Array> {
  const store = new MemoryStore('base.qed');
  const options = new Map<string, string | number>([['cluster_size', 4096], ['table_size', 2]]);
  await qedDriver.create!(store, { size: 6 * 1024 * 1024 + 1000, options, filename: 'base.qed', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'qed', readOnly: false });
  await dev.write(100, new Uint8Array(9000).fill(0x5a));
  await dev.write(4 * 1024 * 1024 + 7, new Uint8Array(3000).fill(0xa5));
  await dev.writeZeroes(5 * 1024 * 1024, 8192);
  await dev.close();
  return store.bytes();
}

/** Header fields, then the L1 table (4096..12288) and the first L2 table's start. */
const FIELDS = [4, 8, 12, 16, 20, 24, 32, 40, 44, 48, 52, 56, 60, 4096, 4104, 4128, 4160, 12288, 12296, 12304, 12312];
const VALUES = [0, 1, 2, 7, 512, 4095, 4096, 4097, 8192, 12288, 0x10000, 0x4000000, 0x7fffffff, 0xfffffffe, 0xffffffff];

function mutate(base: Uint8Array, r: () => number): Uint8Array {
  const buf = new Uint8Array(base);
  const v = new DataView(buf.buffer);
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    if (r() < 0.75) {
      const at = FIELDS[Math.floor(r() * FIELDS.length)] as number;
      v.setUint32(at, (VALUES[Math.floor(r() * VALUES.length)] as number) >>> 0, true);
    } else {
      buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    }
  }
  return r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
}

async function exercise(bytes: Uint8Array, readOnly: boolean): Promise<void> {
  const dev = await BlockDevice.open(new MemoryStore('fuzz.qed', bytes), { format: 'qed', readOnly, check: !readOnly && bytes.length % 2 === 0 });
  try {
    const n = Math.min(dev.size, READ_CAP);
    await dev.read(0, new Uint8Array(n));
    await dev.blockStatus(0, Math.max(1, n));
    const checker = dev.top.image.checker;
    await checker?.check({ repair: readOnly ? 'none' : 'all', log: () => {} });
    if (!readOnly && dev.size > 0) {
      await dev.write(Math.min(dev.size - 1, 5000), new Uint8Array(1).fill(1));
      await dev.writeZeroes(0, Math.min(dev.size, 8192));
    }
  } finally {
    await dev.close();
  }
}

describe('qed fuzz', () => {
  it('mutated images end in a VdiskError or a clean read, check and write', async () => {
    const base = await makeBase();
    const r = xorshift(4242);
    await fuzzCases(ITERATIONS, () => exercise(mutate(base, r), r() < 0.5));
  });
});
