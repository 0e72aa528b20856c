/**
 * qcow (v1) driver on memory stores: header bounds (typed errors with
 * qemu's messages), create → write → read round trips (plain, encrypted,
 * compressed), zero writes, make_empty, and the key an encrypted image
 * needs only for its data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CorruptImageError, InvalidArgumentError, UnsupportedError, VdiskError } from '../../../src/core/errors.js';
import { parseQcowHeader, qcowGeometry, serializeQcowHeader } from '../../../src/formats/qcow/header.js';
import type { QcowImage } from '../../../src/formats/qcow/image.js';
import { qcowDriver } from '../../../src/formats/qcow/index.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

const noExternal = { open: () => Promise.reject(new VdiskError('EUNSAFE', 'user', 'no external files')) };
const SECRETS = { s0: 'pw' };
const KEY: [string, string][] = [['encrypt.key-secret', 's0']];

function header(over: Partial<Parameters<typeof serializeQcowHeader>[0]> = {}): Uint8Array {
  return serializeQcowHeader({ backingFileOffset: 0, backingFileSize: 0, size: 1 << 20, clusterBits: 12, l2Bits: 9, cryptMethod: 0, l1TableOffset: 48, ...over });
}

async function created(options: [string, string | boolean][] = [], size = 3 << 20): Promise<MemoryStore> {
  const store = new MemoryStore('t.qcow');
  await qcowDriver.create!(store, { size, options: new Map(options), filename: 't.qcow', external: noExternal, secrets: SECRETS });
  return store;
}

function open(store: MemoryStore, readOnly: boolean, runtime = KEY, describeOnly = false): Promise<QcowImage> {
  return qcowDriver.open(store, { readOnly, filename: store.name, external: noExternal, runtime, secrets: SECRETS, describeOnly }) as Promise<QcowImage>;
}

describe('parseQcowHeader', () => {
  it('refuses each out-of-bounds field with qemu-img\'s message', () => {
    const cases: [Uint8Array, RegExp, abstract new (...args: never[]) => VdiskError][] = [
      [header({ size: 1 }), /^Image size is too small \(must be at least 2 bytes\)$/, CorruptImageError],
      [header({ clusterBits: 8 }), /^Cluster size must be between 512 and 64k$/, CorruptImageError],
      [header({ clusterBits: 17 }), /^Cluster size must be between 512 and 64k$/, CorruptImageError],
      [header({ l2Bits: 5 }), /^L2 table size must be between 512 and 64k$/, CorruptImageError],
      [header({ l2Bits: 14 }), /^L2 table size must be between 512 and 64k$/, CorruptImageError],
      [header({ cryptMethod: 2 }), /^invalid encryption method in qcow header$/, CorruptImageError],
    ];
    for (const [bytes, message, type] of cases) assert.throws(() => parseQcowHeader(bytes), (e: unknown) => e instanceof type && message.test((e as Error).message));
    const v2 = header();
    v2[7] = 2;
    assert.throws(() => parseQcowHeader(v2), (e: unknown) => e instanceof UnsupportedError && e.hint === "Try the 'qcow2' driver instead.");
    assert.throws(() => parseQcowHeader(new Uint8Array(10)), /^CorruptImageError: Image not in qcow format$/);
  });

  it('bounds the L1 table before anything is sized from it', () => {
    const big = parseQcowHeader(header({ clusterBits: 16, l2Bits: 13, size: 2 ** 62 }));
    assert.throws(() => qcowGeometry(big), /Image too large/);
    const past = parseQcowHeader(header({ clusterBits: 16, l2Bits: 13, size: 2 ** 54 }));
    assert.throws(() => qcowGeometry(past), UnsupportedError);
    assert.deepEqual(qcowGeometry(parseQcowHeader(header({ size: 1000 }))), { virtualSize: 512, l1Size: 1 });
  });
});

describe('qcow images on memory stores', () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: writes read back, unaligned and across L2 tables`, async () => {
      const store = await created(encrypted ? [['encrypt.format', 'aes'], ['encrypt.key-secret', 's0']] : []);
      const image = await open(store, false);
      const writes: [number, number, number][] = [[100, 5000, 1], [2 * 1024 * 1024 - 3, 9000, 2], [7, 3, 3]];
      for (const [o, n, b] of writes) await image.writer!.write(o, new Uint8Array(n).fill(b));
      const expected = new Uint8Array(image.virtualSize);
      for (const [o, n, b] of writes) expected.fill(b, o, o + n);
      const got = new Uint8Array(image.virtualSize);
      await image.readGuest(0, got);
      assert.ok(Buffer.from(got).equals(Buffer.from(expected)));
      await image.close();
      // ciphertext on disk: the pattern bytes never appear in clear
      if (encrypted) assert.equal(Buffer.from(store.bytes()).indexOf(Buffer.alloc(64, 1)), -1);
    });
  }

  it('compressed clusters read back, and a partial overwrite keeps the rest of the cluster', async () => {
    const image = await open(await created(), false);
    const unit = new Uint8Array(4096).map((_, i) => i % 7);
    await image.writer!.writeCompressed!(8192, unit);
    const [e] = await image.mapping(8192, 4096);
    assert.equal(e?.kind, 'compressed');
    await image.writer!.write(8192 + 10, new Uint8Array(5).fill(0xee));
    const got = new Uint8Array(4096);
    await image.readGuest(8192, got);
    unit.fill(0xee, 10, 15);
    assert.ok(Buffer.from(got).equals(Buffer.from(unit)));
    assert.equal((await image.mapping(8192, 4096))[0]?.kind, 'data');
  });

  it('zero writes allocate nothing where nothing is allocated; make_empty drops every cluster', async () => {
    const store = await created();
    const image = await open(store, false);
    const size = store.bytes().length;
    await image.writer!.writeZeroes(0, 1 << 20, { mayUnmap: false });
    assert.equal(store.bytes().length, size);
    await image.writer!.write(0, new Uint8Array(4096).fill(9));
    await image.writer!.makeEmpty!();
    assert.deepEqual((await image.mapping(0, image.virtualSize)).map((e) => e.kind), ['unallocated']);
    assert.equal(store.bytes().length, 48 + 2 * 8); // the header and the L1 table (2 entries), where qemu cuts the file
  });

  it('an encrypted image opens without its key only to be described', async () => {
    const store = await created([['encryption', true], ['encrypt.key-secret', 's0']]);
    await assert.rejects(open(store, true, []), (e: unknown) => e instanceof InvalidArgumentError && /encrypt\.key-secret' is required/.test((e as Error).message));
    const described = await open(store, true, [], true);
    assert.deepEqual(await described.describe(), { clusterSize: 4096, dirty: false, encrypted: true });
    await assert.rejects(open(store, true, [['encrypt.format', 'luks']]), /Header reported 'aes' encryption format but options specify 'luks'/);
    await assert.rejects(open(store, true, [['encrypt.key-secret', 'nope']]), /No secret with id 'nope'/);
  });
});
