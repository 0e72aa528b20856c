/**
 * Fuzz: mutated VHD footers, dynamic headers, BATs and random bytes of
 * small images made in memory by vdisk's own create code. Every case must
 * end in a typed VdiskError or a successful open and full walk, within a
 * time bound. `VDISK_FUZZ_ITERATIONS` raises the case count (default 300).
 */
import { describe, it } from 'node:test';

import { fuzzCases, noExternal, xorshift } from '../helpers/fuzz.js';

import { BlockDevice } from '../../src/block/device.js';
import { vpcDriver } from '../../src/formats/vpc/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const ITERATIONS = Number(process.env['VDISK_FUZZ_ITERATIONS'] ?? 300);
const READ_CAP = 8 * 1024 * 1024;

async function makeBase(subformat: 'dynamic' | 'fixed'): Promise<Uint8Array> {
  const store = new MemoryStore('base.vpc');
  await vpcDriver.create!(store, { size: 6 * 1024 * 1024, options: new Map([['subformat', subformat]]), filename: 'base.vpc', external: noExternal });
  const dev = await BlockDevice.open(store, { format: 'vpc', readOnly: false, backing: false });
  await dev.write(100, new Uint8Array(5000).fill(0x5a));
  await dev.write(4 * 1024 * 1024 + 7, new Uint8Array(3000).fill(0xa5));
  await dev.flush();
  return store.bytes();
}

function fixChecksum(buf: Uint8Array, start: number, length: number, at: number): void {
  if (start + length > buf.length) return;
  let sum = 0;
  for (let i = start; i < start + length; i++) if (i < at || i >= at + 4) sum = (sum + (buf[i] as number)) >>> 0;
  new DataView(buf.buffer, buf.byteOffset).setUint32(at, ~sum >>> 0);
}

const FIELDS: readonly [number, number][] = [
  [16, 8], [40, 8], [48, 8], [56, 2], [58, 1], [59, 1], [60, 4], [28, 4],
  [512 + 16, 8], [512 + 28, 4], [512 + 32, 4], [512 + 576, 4], [512 + 584, 4], [512 + 592, 8],
  [1536, 4], [1540, 4], [1544, 4],
];
const VALUES = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x1ff, 0x200, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

function mutate(base: Uint8Array, r: () => number): Uint8Array {
  const buf = new Uint8Array(base);
  const v = new DataView(buf.buffer);
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    if (r() < 0.7) {
      const [off, width] = FIELDS[Math.floor(r() * FIELDS.length)] as [number, number];
      const val = VALUES[Math.floor(r() * VALUES.length)] as number;
      const at = r() < 0.2 ? buf.length - 512 + (off % 512) : off;
      if (at + width > buf.length) continue;
      if (width === 8) v.setBigUint64(at, r() < 0.3 ? 0xffffffffffffffffn : BigInt(val) * (r() < 0.5 ? 1n : 512n));
      else if (width === 4) v.setUint32(at, val >>> 0);
      else if (width === 2) v.setUint16(at, val & 0xffff);
      else buf[at] = val & 0xff;
    } else {
      buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    }
  }
  if (r() < 0.8) {
    fixChecksum(buf, 0, 512, 64);
    fixChecksum(buf, buf.length - 512, 512, buf.length - 512 + 64);
    fixChecksum(buf, 512, 1024, 512 + 36);
  }
  return r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
}

/** Opens and walks the whole image; returns normally or throws a VdiskError. */
async function exercise(bytes: Uint8Array, readOnly: boolean): Promise<void> {
  const store = new MemoryStore('fuzz.vpc', bytes);
  const dev = await BlockDevice.open(store, { format: 'vpc', readOnly, backing: false });
  try {
    const image = dev.top.image;
    let read = 0;
    for (let off = 0; off < image.virtualSize; ) {
      const extents = await image.mapping(off, image.virtualSize - off);
      for (const e of extents) {
        if (e.kind === 'data' && read < READ_CAP) {
          const n = Math.min(e.length, READ_CAP - read);
          await e.store.read(e.hostOffset, new Uint8Array(n));
          read += n;
        }
        off += e.length;
      }
    }
    await dev.read(0, new Uint8Array(Math.min(dev.size, 1024 * 1024)));
    if (!readOnly && dev.size > 0) await dev.write(Math.floor(dev.size / 2 / 512) * 512, new Uint8Array(512).fill(1));
  } finally {
    await dev.close();
  }
}

describe('vpc fuzz', () => {
  for (const sub of ['dynamic', 'fixed'] as const) {
    it(`mutated ${sub} images end in a VdiskError or a clean read`, async () => {
      const base = await makeBase(sub);
      const r = xorshift(sub === 'dynamic' ? 0xc0ffee : 0xbeef);
      await fuzzCases(ITERATIONS / 2, () => exercise(mutate(base, r), r() < 0.7));
    });
  }
});
