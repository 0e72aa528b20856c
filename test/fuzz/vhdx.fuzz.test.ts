/**
 * vhdx fuzz: small images built in memory (dynamic with data, fixed, a
 * 4096-byte-sector one, one with a dirty log), mutated in header, region,
 * metadata, BAT and log fields and in random bytes, then opened (read-only
 * and read-write) and read in full. Every case must end in a VdiskError or
 * a successful read within a time bound. Runs without qemu-img.
 * VDISK_FUZZ_ITERATIONS raises the number of cases.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fuzzCases, xorshift } from '../helpers/fuzz.js';

import { vhdxDriver } from '../../src/formats/vhdx/index.js';
import { buildVhdx } from '../../src/formats/vhdx/create.js';
import { HEADER1_OFFSET, HEADER2_OFFSET, HEADER_SIZE, MiB } from '../../src/formats/vhdx/constants.js';
import { selectHeader, serializeHeader } from '../../src/formats/vhdx/header.js';
import { serializeLogEntry } from '../../src/formats/vhdx/log.js';
import type { ExternalFiles, FormatImage } from '../../src/formats/driver.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { make4kImage, pattern } from '../formats/vhdx/fixtures.js';

const ITERATIONS = Number(process.env['VDISK_FUZZ_ITERATIONS'] ?? 300);
const external: ExternalFiles = { open: () => Promise.reject(new Error('no external files in fuzz')) };

async function seedDynamic(fixed: boolean): Promise<Uint8Array> {
  const store = new MemoryStore('seed.vhdx');
  await buildVhdx(store, { size: 3 * MiB + 512, logSize: MiB, blockSize: MiB, fixed, useZeroBlocks: !fixed });
  const image = await vhdxDriver.open(store, { readOnly: false, filename: 'seed.vhdx', external });
  await image.writer?.write(4096, pattern(MiB + 100, 5));
  await image.writer?.write(3 * MiB, pattern(512, 6));
  await image.close();
  return store.bytes();
}

/** The dynamic seed with a pending log entry that rewrites a BAT sector and zeroes 4 KiB. */
function withDirtyLog(seed: Uint8Array): Uint8Array {
  const file = seed.slice();
  const cur = selectHeader(file.subarray(HEADER1_OFFSET, HEADER1_OFFSET + HEADER_SIZE), file.subarray(HEADER2_OFFSET, HEADER2_OFFSET + HEADER_SIZE));
  const batOffset = Number(new DataView(file.buffer).getBigUint64(192 * 1024 + 32, true));
  const sector = file.slice(batOffset, batOffset + 4096);
  sector.fill(0, 16, 24); // block 2 → NOT_PRESENT
  const logGuid = new Uint8Array(16).fill(0x33);
  const entry = serializeLogEntry({ sequence: 2n, logGuid, tail: 0, flushedFileOffset: file.length, lastFileOffset: file.length, sectors: [{ fileOffset: batOffset, data: sector }], zeros: [{ fileOffset: 6 * MiB, length: 4096 }] });
  file.set(entry, cur.header.logOffset);
  file.set(serializeHeader({ ...cur.header, sequenceNumber: cur.header.sequenceNumber + 1n, logGuid }), cur.slot === 0 ? HEADER2_OFFSET : HEADER1_OFFSET);
  return file;
}

/** Interesting places: header fields, region and metadata tables and items, BAT, log. */
function hotOffsets(file: Uint8Array): number[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out = [0, 8];
  for (const h of [HEADER1_OFFSET, HEADER2_OFFSET]) out.push(h, h + 4, h + 8, h + 48, h + 64, h + 66, h + 68, h + 72);
  for (const t of [192 * 1024, 256 * 1024]) for (let k = 0; k < 24; k += 4) out.push(t + 8, t + 16 + k, t + 48 + k);
  const bat = Number(v.getBigUint64(192 * 1024 + 32, true));
  const md = Number(v.getBigUint64(192 * 1024 + 64, true));
  for (let k = 0; k < 64; k += 4) out.push(bat + k);
  for (let k = 0; k < 192; k += 4) out.push(md + k);
  for (let k = 0; k < 48; k += 4) out.push(md + 64 * 1024 + k);
  for (let k = 0; k < 160; k += 4) out.push(MiB + k);
  return out.filter((o) => o < file.length);
}

const VALUES = [0, 1, 0xff, 0x7f, 0x80, 0xffffffff, 0x80000000, 0x7fffffff, 512, 4096, MiB, 256 * MiB, 2047, 2048];

function mutate(file: Uint8Array, r: () => number): Uint8Array {
  const out = file.slice();
  const v = new DataView(out.buffer);
  const hot = hotOffsets(out);
  const kind = r();
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    if (kind < 0.6) {
      const off = hot[Math.floor(r() * hot.length)] as number;
      if (off + 4 <= out.length) v.setUint32(off, VALUES[Math.floor(r() * VALUES.length)] as number, true);
    } else if (kind < 0.9) {
      const off = Math.floor(r() * Math.min(out.length, 4 * MiB));
      out[off] = Math.floor(r() * 256);
    } else {
      return out.slice(0, Math.floor(r() * out.length));
    }
  }
  return out;
}

async function exercise(bytes: Uint8Array, readOnly: boolean): Promise<void> {
  const store = new MemoryStore('fuzz.vhdx', bytes);
  let image: FormatImage | undefined;
  try {
    image = await vhdxDriver.open(store, { readOnly, filename: 'fuzz.vhdx', external });
    const size = Math.min(image.virtualSize, 16 * MiB);
    let pos = 0;
    while (pos < size) {
      const extents = await image.mapping(pos, size - pos);
      assert.ok(extents.length > 0);
      for (const e of extents) {
        assert.equal(e.offset, pos);
        assert.ok(e.length > 0);
        if (e.kind === 'data') await e.store.read(e.hostOffset, new Uint8Array(Math.min(e.length, MiB)));
        pos += e.length;
      }
    }
    if (!readOnly && image.writer && image.virtualSize >= 8192) await image.writer.write(4096, new Uint8Array(4096).fill(9));
  } finally {
    await image?.close().catch(() => undefined);
  }
}

describe('vhdx fuzz', () => {
  it(`survives ${ITERATIONS} mutated images with a typed error or a full read`, async () => {
    const dynamic = await seedDynamic(false);
    const seeds = [dynamic, await seedDynamic(true), (await make4kImage()).file, withDirtyLog(dynamic)];
    for (const s of seeds) await exercise(s, true); // seeds themselves must open
    const r = xorshift(0x5eed);
    await fuzzCases(ITERATIONS, (i) => exercise(mutate(seeds[i % seeds.length] as Uint8Array, r), r() < 0.7));
  });
});
