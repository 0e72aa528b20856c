/**
 * Fuzz: mutated qcow (v1) headers, L1 and L2 tables, compressed cluster
 * descriptors and random bytes of small images made in memory by vdisk's
 * own create and writes (plain with compressed clusters, and AES
 * encrypted). Every case must end in a typed VdiskError or a successful
 * open, bounded reads, block status and a write, within a time bound.
 * `VDISK_FUZZ_ITERATIONS` raises the case count (default 300).
 */
import { describe, it } from 'node:test';

import { fuzzCases, noExternal, xorshift } from '../helpers/fuzz.js';

import { VdiskError } from '../../src/core/errors.js';
import type { QcowImage } from '../../src/formats/qcow/image.js';
import { qcowDriver } from '../../src/formats/qcow/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const ITERATIONS = Number(process.env['VDISK_FUZZ_ITERATIONS'] ?? 300);
/** Most guest bytes a case reads (mutated sizes can reach petabytes). */
const READ_BYTES = 4 * 1024 * 1024;
const SECRETS = { s0: 'pw' };

/** Most bytes a case's image file may grow to: tables placed far out would otherwise make the memory store allocate gigabytes (a file would stay sparse). */
const STORE_BYTES = 64 * 1024 * 1024;

/** A memory store that runs out of space, as a full disk does. */
class BoundedStore extends MemoryStore {
  override async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset + data.length > STORE_BYTES) throw new VdiskError('ENOSPC', 'environment', 'No space left on device');
    return super.write(offset, data);
  }

  override async truncate(size: number): Promise<void> {
    if (size > STORE_BYTES) throw new VdiskError('ENOSPC', 'environment', 'No space left on device');
    return super.truncate(size);
  }
}

/** Opens an image straight through the driver, with the key (the block layer takes runtime options only from names). */
function open(store: MemoryStore, readOnly: boolean): Promise<QcowImage> {
  return qcowDriver.open(store, { readOnly, filename: store.name, external: noExternal, runtime: [['encrypt.key-secret', 's0']], secrets: SECRETS }) as Promise<QcowImage>;
}

/** A 3 MiB image: data, a compressed cluster (plain images), an unaligned write. */
async function makeBase(encrypted: boolean): Promise<Uint8Array> {
  const store = new MemoryStore('base.qcow');
  const options = new Map<string, string | boolean>(encrypted ? [['encrypt.format', 'aes'], ['encrypt.key-secret', 's0']] : []);
  await qcowDriver.create!(store, { size: 3 * 1024 * 1024, options, filename: 'base.qcow', external: noExternal, secrets: SECRETS });
  const image = await open(store, false);
  const w = image.writer!;
  await w.write(100, new Uint8Array(5000).fill(0x5a));
  await w.write(2 * 1024 * 1024 + 7, new Uint8Array(3000).fill(0xa5));
  if (!encrypted) await w.writeCompressed!(1024 * 1024, new Uint8Array(4096).fill(0x3c));
  const bytes = store.bytes();
  await image.close();
  return bytes;
}

/** Header fields (big-endian), then the L1 table and the first L2 table of a new image. */
const FIELDS: [number, 1 | 4 | 8][] = [[4, 4], [8, 8], [16, 4], [24, 8], [32, 1], [33, 1], [36, 4], [40, 8], [48, 8], [56, 8], [4096, 8], [4104, 8], [4608, 8], [4616, 8]];
const VALUES = [0n, 1n, 2n, 8n, 9n, 12n, 13n, 16n, 17n, 0x30n, 0x200n, 0x1000n, 0x1001n, 0x7fffffffn, 0xffffffffn, 1n << 53n, 1n << 62n, (1n << 63n) | 0x2000n, (1n << 63n) | (5n << 51n) | 0x2000n, 0xffffffffffffffffn];

function mutate(base: Uint8Array, r: () => number): Uint8Array {
  const buf = new Uint8Array(base);
  const v = new DataView(buf.buffer);
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    const [at, width] = FIELDS[Math.floor(r() * FIELDS.length)] as [number, 1 | 4 | 8];
    const value = VALUES[Math.floor(r() * VALUES.length)] as bigint;
    if (r() < 0.75 && at + width <= buf.length) {
      if (width === 8) v.setBigUint64(at, value);
      else if (width === 4) v.setUint32(at, Number(value & 0xffffffffn));
      else v.setUint8(at, Number(value & 0xffn));
    } else {
      buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    }
  }
  return r() < 0.1 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
}

async function exercise(bytes: Uint8Array, readOnly: boolean): Promise<void> {
  const image = await open(new BoundedStore('fuzz.qcow', bytes), readOnly);
  try {
    const size = image.virtualSize;
    const head = Math.min(size, READ_BYTES);
    await image.readGuest(0, new Uint8Array(head));
    if (size > head) await image.readGuest(size - 4096, new Uint8Array(4096));
    for (let offset = 0, k = 0; offset < size && k < 64; k++) {
      const extents = await image.mapping(offset, size - offset, 1);
      offset += (extents[0] as { length: number }).length;
    }
    if (image.writer && size > 0) {
      await image.writer.write(size - 1, new Uint8Array(1).fill(1));
      await image.writer.write(0, new Uint8Array(Math.min(size, 6000)).fill(2));
      if (size >= 4096) await image.writer.writeCompressed!(0, new Uint8Array(4096).fill(3));
      await image.readGuest(0, new Uint8Array(Math.min(size, 8192)));
    }
  } finally {
    await image.close();
  }
}

describe('qcow fuzz', () => {
  for (const encrypted of [false, true]) {
    it(`mutated ${encrypted ? 'encrypted' : 'plain'} images end in a VdiskError or a clean read`, async () => {
      const base = await makeBase(encrypted);
      const r = xorshift(encrypted ? 91 : 4711);
      await fuzzCases(ITERATIONS / 2, () => exercise(mutate(base, r), r() < 0.6));
    });
  }
});
