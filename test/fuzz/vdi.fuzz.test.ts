/**
 * Fuzz: mutated VDI headers, block maps and random bytes of small images
 * made in memory by vdisk's own create code. Every case must end in a
 * typed VdiskError or a successful open, full read and a write, within a
 * time bound. `VDISK_FUZZ_ITERATIONS` raises the case count (default 300).
 */
import { describe, it } from 'node:test';

import { fuzzCases, noExternal, xorshift } from '../helpers/fuzz.js';

import { BlockDevice } from '../../src/block/device.js';
import { vdiDriver } from '../../src/formats/vdi/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const ITERATIONS = Number(process.env['VDISK_FUZZ_ITERATIONS'] ?? 300);

async function makeBase(isStatic: boolean): Promise<Uint8Array> {
  const store = new MemoryStore('base.vdi');
  await vdiDriver.create!(store, { size: 5 * 1024 * 1024 + 1000, options: new Map([['static', isStatic]]), filename: 'base.vdi', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'vdi', readOnly: false });
  await dev.write(100, new Uint8Array(5000).fill(0x5a));
  await dev.write(3 * 1024 * 1024 + 7, new Uint8Array(3000).fill(0xa5));
  await dev.close();
  return store.bytes();
}

const FIELDS = [0x40, 0x44, 0x48, 0x4c, 0x154, 0x158, 0x168, 0x170, 0x174, 0x178, 0x180, 0x184, 0x1a8, 0x1b8, 0x200, 0x204, 0x208, 0x20c];
const VALUES = [0, 1, 2, 3, 5, 0x180, 0x1ff, 0x200, 0x400, 0x100000, 0x1fffff80, 0x7fffffff, 0xfffffffe, 0xffffffff];

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
  const dev = await BlockDevice.open(new MemoryStore('fuzz.vdi', bytes), { format: 'vdi', readOnly });
  try {
    await dev.read(0, new Uint8Array(dev.size));
    if (!readOnly && dev.size > 0) await dev.write(dev.size - 1, new Uint8Array(1).fill(1));
  } finally {
    await dev.close();
  }
}

describe('vdi fuzz', () => {
  for (const isStatic of [false, true]) {
    it(`mutated ${isStatic ? 'static' : 'dynamic'} images end in a VdiskError or a clean read`, async () => {
      const base = await makeBase(isStatic);
      const r = xorshift(isStatic ? 77 : 1234);
      await fuzzCases(ITERATIONS / 2, () => exercise(mutate(base, r), r() < 0.6));
    });
  }
});
