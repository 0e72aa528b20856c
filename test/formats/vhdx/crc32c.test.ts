/** CRC-32C and the pure VHDX parsers: known vectors, round trips, and every vhdx limit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CorruptImageError, UnsupportedError } from '../../../src/core/errors.js';
import { LIMITS } from '../../../src/core/limits.js';
import { batGeometry, bitmapIndex, checkBatSize, payloadIndex } from '../../../src/formats/vhdx/bat.js';
import { buildVhdx } from '../../../src/formats/vhdx/create.js';
import { vhdxDriver } from '../../../src/formats/vhdx/index.js';
import { checkParentLocatorSize } from '../../../src/formats/vhdx/metadata.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { GUID_BAT, guidBytes, guidText } from '../../../src/formats/vhdx/constants.js';
import { crc32c, crc32cWithZeroField } from '../../../src/formats/vhdx/crc32c.js';
import { parseHeader, selectHeader, serializeHeader } from '../../../src/formats/vhdx/header.js';
import { findActiveSequence, serializeLogEntry } from '../../../src/formats/vhdx/log.js';
import { parseRegionTable, regionTableValid, serializeRegionTable } from '../../../src/formats/vhdx/region.js';
import { parentFilename, parseParentLocator, serializeParentLocator } from '../../../src/formats/vhdx/parent-locator.js';

describe('crc32c', () => {
  it('matches the RFC 3720 / iSCSI test vectors', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it('chains across calls and treats a field as zero without changing the buffer', () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
    assert.equal(crc32c(data.subarray(300), crc32c(data.subarray(0, 300))), crc32c(data));
    const copy = data.slice();
    copy.fill(0, 4, 8);
    assert.equal(crc32cWithZeroField(data, 4), crc32c(copy));
    assert.equal(data[4], 28);
  });
});

describe('vhdx structures', () => {
  it('encodes GUIDs with little-endian leading fields', () => {
    assert.equal(Buffer.from(GUID_BAT).toString('hex'), '6677c22d23f600429d64115e9bfd4a08');
    assert.equal(guidText(guidBytes('2DC27766-F623-4200-9D64-115E9BFD4A08')), '{2DC27766-F623-4200-9D64-115E9BFD4A08}');
  });

  it('reads GUID text in either case, braces and dashes anywhere, and refuses anything else', () => {
    const want = '{0A1B2C3D-4E5F-6A7B-8C9D-AEBFC0D1E2F3}';
    for (const text of ['0a1b2c3d-4e5f-6a7b-8c9d-aebfc0d1e2f3', want, '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F3', '{0a1b-2c3d4e5f6a7b8c9daebfc0d1e2f3}', '--0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F3{']) {
      assert.equal(guidText(guidBytes(text)), want, text);
    }
    for (const bad of ['', '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F', '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F34', '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2Fg', '0A1B2C3D 4E5F6A7B8C9DAEBFC0D1E2F3', '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F:', '0A1B2C3D4E5F6A7B8C9DAEBFC0D1E2F@']) {
      assert.throws(() => guidBytes(bad), { name: 'TypeError', message: `Bad GUID '${bad}'` }, bad);
    }
  });

  const header = (seq: bigint, extra = 0) => ({
    sequenceNumber: seq,
    fileWriteGuid: new Uint8Array(16).fill(1 + extra),
    dataWriteGuid: new Uint8Array(16).fill(2),
    logGuid: new Uint8Array(16),
    logVersion: 0,
    version: 1,
    logLength: 1 << 20,
    logOffset: 1 << 20,
  });

  it('picks the valid header with the highest sequence number', () => {
    const a = serializeHeader(header(5n));
    const b = serializeHeader(header(6n));
    assert.equal(selectHeader(a, b).slot, 1);
    assert.equal(selectHeader(serializeHeader(header(9n)), b).slot, 0);
    const bad = b.slice();
    bad[100] = 1; // CRC no longer matches
    assert.equal(parseHeader(bad), undefined);
    assert.equal(selectHeader(a, bad).slot, 0);
    assert.throws(() => selectHeader(bad, bad), CorruptImageError);
    // Equal sequence numbers: only identical headers are accepted.
    assert.equal(selectHeader(a, a.slice()).slot, 0);
    assert.throws(() => selectHeader(a, serializeHeader(header(5n, 3))), CorruptImageError);
  });

  it('rejects a log offset inside the header section or unaligned', () => {
    assert.throws(() => selectHeader(serializeHeader({ ...header(1n), logOffset: 4096 }), new Uint8Array(4096)), CorruptImageError);
  });

  it('validates region tables: overlaps, duplicates, unknown required regions', () => {
    const t = serializeRegionTable({ bat: { offset: 2 << 20, length: 1 << 20 }, metadata: { offset: 3 << 20, length: 1 << 20 } });
    assert.ok(regionTableValid(t));
    assert.deepEqual(parseRegionTable(t, 0, []).bat, { offset: 2 << 20, length: 1 << 20 });
    assert.throws(() => parseRegionTable(t, 0, [{ offset: 2 << 20, length: 4096 }]), CorruptImageError);
    const dup = t.slice();
    dup.set(GUID_BAT, 16 + 32);
    assert.throws(() => parseRegionTable(dup, 0, []), CorruptImageError);
    const req = t.slice();
    req[16 + 32] = 0x99; // an unknown GUID ...
    new DataView(req.buffer).setUint32(16 + 32 + 28, 1, true); // ... marked required
    assert.throws(() => parseRegionTable(req, 0, []), UnsupportedError);
    const many = t.slice();
    new DataView(many.buffer).setUint32(8, 2048, true);
    assert.throws(() => parseRegionTable(many, 0, []), CorruptImageError);
  });

  it('computes the BAT layout with interleaved sector-bitmap entries', () => {
    const g = batGeometry(64 * 2 ** 30, 32 << 20, 512, false); // chunk ratio 128
    assert.equal(g.chunkRatio, 128);
    assert.equal(g.dataBlocks, 2048);
    assert.equal(g.totalEntries, 2048 + 15);
    assert.equal(payloadIndex(g, 128), 129);
    assert.equal(bitmapIndex(g, 0), 128);
    const d = batGeometry(1 << 30, 1 << 20, 4096, true); // chunk ratio 32768
    assert.equal(d.chunkRatio, 32768);
    assert.equal(d.totalEntries, 32769);
  });

  it('round-trips a parent locator and prefers relative_path', () => {
    const loc = serializeParentLocator([
      ['parent_linkage', '{00000000-0000-0000-0000-000000000000}'],
      ['absolute_win32_path', 'C:\\vm\\base.vhdx'],
      ['relative_path', '.\\sub\\base.vhdx'],
    ]);
    const m = parseParentLocator(loc, 0);
    assert.equal(m.get('absolute_win32_path'), 'C:\\vm\\base.vhdx');
    assert.equal(parentFilename(m), 'sub/base.vhdx');
    const bad = loc.slice();
    new DataView(bad.buffer).setUint32(20, 100000, true);
    assert.throws(() => parseParentLocator(bad, 0), CorruptImageError);
  });

  it('finds the active log sequence and ignores entries of another log GUID', () => {
    const guid = new Uint8Array(16).fill(9);
    const log = new Uint8Array(1 << 20);
    const data = new Uint8Array(4096).fill(0x42);
    const e1 = serializeLogEntry({ sequence: 3n, logGuid: guid, tail: 0, flushedFileOffset: 0, lastFileOffset: 0, sectors: [{ fileOffset: 2 << 20, data }] });
    const e2 = serializeLogEntry({ sequence: 4n, logGuid: guid, tail: 0, flushedFileOffset: 0, lastFileOffset: 0, sectors: [], zeros: [{ fileOffset: 3 << 20, length: 8192 }] });
    log.set(e1, 0);
    log.set(e2, e1.length);
    const r = findActiveSequence(log, guid, 1 << 20);
    assert.ok(r);
    assert.equal(r.entries, 2);
    assert.equal(r.lastSequence, 4n);
    assert.deepEqual(r.writes.map((w) => w.kind), ['data', 'zero']);
    assert.equal(findActiveSequence(log, new Uint8Array(16).fill(8), 1 << 20), undefined);
    const torn = log.slice();
    torn[e1.length + 100] = (torn[e1.length + 100] ?? 0) ^ 1; // damage the second entry: only the first remains
    assert.equal(findActiveSequence(torn, guid, 1 << 20)?.entries, 1);
  });
});

describe('vhdx limits (LIMITS.vhdx*)', () => {
  it('accepts the largest BAT a valid image has (as qemu), refuses a larger one before reading it', () => {
    const g = batGeometry(64 * 2 ** 40, 1 << 20, 512, false); // 64 TiB at 1 MiB blocks: 512 MiB of BAT
    assert.equal(checkBatSize(g, 2 ** 32 - 1, 0), 537001976);
    assert.throws(() => checkBatSize(batGeometry(128 * 2 ** 40, 1 << 20, 512, false), 2 ** 32 - 1, 0), UnsupportedError);
    assert.throws(() => checkBatSize(batGeometry(8 << 20, 1 << 20, 512, false), 8, 0), CorruptImageError);
  });

  it('refuses a parent locator larger than vhdxMaxParentLocatorBytes', () => {
    assert.throws(() => checkParentLocatorSize({ offset: 0, length: LIMITS.vhdxMaxParentLocatorBytes + 1 }), UnsupportedError);
  });

  it('refuses to replay a dirty log larger than vhdxMaxLogBytes', async () => {
    const store = new MemoryStore('big-log.vhdx');
    await buildVhdx(store, { size: 1 << 20, logSize: 1 << 20, blockSize: 1 << 20, fixed: false, useZeroBlocks: true });
    const file = store.bytes();
    const cur = selectHeader(file.subarray(65536, 65536 + 4096), file.subarray(131072, 131072 + 4096));
    const h = serializeHeader({ ...cur.header, sequenceNumber: cur.header.sequenceNumber + 1n, logGuid: new Uint8Array(16).fill(1), logLength: LIMITS.vhdxMaxLogBytes + (1 << 20) });
    await store.write(cur.slot === 0 ? 131072 : 65536, h);
    const external = { open: () => Promise.reject(new Error('none')) };
    await assert.rejects(vhdxDriver.open(store, { readOnly: true, filename: 'big-log.vhdx', external }), UnsupportedError);
  });

  it('stops a hostile log search at vhdxLogScanBudgetBytes', () => {
    const guid = new Uint8Array(16).fill(9);
    const log = new Uint8Array(2 << 20);
    const v = new DataView(log.buffer);
    for (let pos = 0; pos < log.length; pos += 4096) {
      // Entry headers claiming the whole log, all with a bad checksum.
      v.setUint32(pos, 0x65676f6c, true);
      v.setUint32(pos + 8, log.length, true);
      v.setBigUint64(pos + 16, 1n, true);
      log.set(guid, pos + 32);
    }
    assert.throws(() => findActiveSequence(log, guid, 0), CorruptImageError);
  });
});
