/** Zero detection inside data (`-S`): qemu-img's is_allocated_sectors_min rules, sector by sector. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { nextSparseRun, sparseAlignment } from '../../../src/jobs/sparse-scan.js';

/** A buffer of 512-byte sectors: 'd' data, '0' zeros. */
function sectors(pattern: string): Uint8Array {
  const buf = new Uint8Array(pattern.length * 512);
  [...pattern].forEach((c, i) => {
    if (c === 'd') buf.fill(1, i * 512, i * 512 + 512);
  });
  return buf;
}

/** All runs of `buf` at `sector`, as 'd<n>'/'0<n>' in sectors. */
function runs(buf: Uint8Array, sector: number, min: number, alignment: number): string[] {
  const out: string[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const r = nextSparseRun(buf.subarray(pos), sector + pos / 512, min, alignment);
    out.push(`${r.data ? 'd' : '0'}${r.length / 512}`);
    pos += r.length;
  }
  return out;
}

describe('sparse scan (convert -S)', () => {
  it('aligns to the largest power of two of sectors in the sparse size', () => {
    assert.equal(sparseAlignment(4096), 8);
    assert.equal(sparseAlignment(3 * 512), 2);
    assert.equal(sparseAlignment(65536), 128);
    assert.equal(sparseAlignment(0), 1);
  });

  it('a buffer of zeros is one zero run, however short (qemu ignores the minimum there)', () => {
    assert.deepEqual(runs(sectors('0000'), 0, 65536, 128), ['04']);
  });

  it('zero runs after data shorter than the minimum stay data', () => {
    assert.deepEqual(runs(sectors('dd00dddd'), 0, 4096, 8), ['d8']);
  });

  it('run ends move to the alignment: data grows to it, zeros shrink to it', () => {
    assert.deepEqual(runs(sectors('dddd' + '0'.repeat(16) + 'dddd'), 0, 4096, 8), ['d8', '08', 'd8']);
  });

  it('a leading zero run that ends before the alignment boundary is written as data', () => {
    assert.deepEqual(runs(sectors('0ddddddd' + '0'.repeat(8)), 0, 4096, 8), ['d8', '08']);
  });

  it('alignment counts from the target sector, not the buffer start', () => {
    assert.deepEqual(runs(sectors('dddd' + '0'.repeat(12)), 4, 4096, 8), ['d4', '012']);
    assert.deepEqual(runs(sectors('dddd' + '0'.repeat(12)), 0, 4096, 8), ['d8', '08']);
  });
});
