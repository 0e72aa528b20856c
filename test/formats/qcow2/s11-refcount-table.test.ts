/**
 * The refcount table is parsed at every read/write open (and for qemu's
 * metadata-preallocation test at every block-status open), so it is read
 * as two 32-bit halves, not a BigInt per entry. These cases hold it to the
 * BigInt reading it replaced: the low nine reserved bits dropped, offsets
 * up to 2^53 - 512 kept exactly, entries above 2^53 and unaligned ones
 * refused with the same messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CorruptImageError, UnsupportedError } from '../../../src/core/errors.js';
import { makeGeometry } from '../../../src/formats/qcow2/layout.js';
import { parseRefcountTable } from '../../../src/formats/qcow2/refcount.js';

/** The reading it replaced, as the reference. */
function reference(bytes: Uint8Array, clusterSize: number): Float64Array | Error {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) {
    const v = view.getBigUint64(i * 8) & 0xfffffffffffffe00n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return new UnsupportedError(`Refcount block offset in reftable entry ${i} is above 2^53, the largest offset vdisk supports`);
    out[i] = Number(v);
    if (out[i]! % clusterSize !== 0) return new CorruptImageError(`Refblock offset 0x${out[i]!.toString(16)} unaligned (reftable index: 0x${i.toString(16)})`);
  }
  return out;
}

function table(entries: readonly bigint[], offset = 0): Uint8Array {
  const bytes = new Uint8Array(offset + entries.length * 8).subarray(offset);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  entries.forEach((e, i) => view.setBigUint64(i * 8, e));
  return bytes;
}

function same(bytes: Uint8Array, clusterBits: number): void {
  const g = makeGeometry(clusterBits, false, 4);
  const want = reference(bytes, g.clusterSize);
  if (want instanceof Error) {
    assert.throws(() => parseRefcountTable(bytes, g), (err: unknown) => err instanceof want.constructor && (err as Error).message === want.message);
  } else {
    assert.deepEqual(parseRefcountTable(bytes, g), want);
  }
}

describe('parseRefcountTable', () => {
  it('matches the BigInt reading at the edges', () => {
    const edges = [
      0n,
      0x1ffn, // reserved bits only: no block
      0x10000n,
      0x101ffn, // reserved bits dropped
      0xfffffe00n,
      0x1_0000_0000n,
      0x1_0001_0000n,
      (1n << 52n) + 0x10000n,
      (1n << 53n) - 0x10000n, // the largest 64 KiB-aligned offset kept
      (1n << 53n) - 0x200n, // the largest value kept: unaligned for 64 KiB clusters, aligned for 512 B
      (1n << 53n) - 1n, // masked to 2^53 - 512
      1n << 53n, // above 2^53
      0xffff_ffff_ffff_ffffn,
      0x8000_0000_0000_0000n,
      0x200n, // aligned to 512 bytes only
    ];
    for (const bits of [9, 12, 16, 21]) {
      for (const e of edges) same(table([0n, e, 0n]), bits);
    }
  });

  it('matches the BigInt reading on random tables, aligned and not', () => {
    let seed = 0x2545f491;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    for (let round = 0; round < 400; round++) {
      const bits = [9, 16, 21][round % 3]!;
      const entries = Array.from({ length: 1 + (next() % 64) }, () => {
        const kind = next() % 4;
        if (kind === 0) return 0n;
        const high = kind === 3 ? BigInt(next()) : BigInt(next() % 0x200000);
        const low = kind === 1 ? BigInt(next() & ~((1 << bits) - 1)) : BigInt(next());
        return (high << 32n) | (low & 0xffffffffn);
      });
      same(table(entries, round % 5), bits);
    }
  });
});
