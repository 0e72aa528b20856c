/**
 * Allocation qemu-img leaves behind that tools can see: a file grown from
 * nothing gets its first block written (qemu's file driver does it for
 * every format that truncates a new file), so `qemu-img map` of what vdisk
 * makes reads the same.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { requireQemu, tmpDir } from '../helpers/qemu.js';
import { pairDiffs, pool, runPair, type PairCase } from '../helpers/validate-pair.js';

const dir = tmpDir('vdisk-fidelity-alloc-');
after(() => dir.cleanup());

const CASES: PairCase[] = [
  { args: ['create', '-f', 'raw', 'c.raw', '2M'], image: 'c.raw', format: 'raw' },
  { args: ['create', '-f', 'raw', 'c.raw', '1000'], image: 'c.raw', format: 'raw' },
  { args: ['create', '-f', 'raw', '-o', 'preallocation=falloc', 'c.raw', '1M'], image: 'c.raw', format: 'raw' },
  { args: ['resize', '-f', 'raw', 'e.raw', '1M'], setup: [': > e.raw'], image: 'e.raw', format: 'raw' },
  { args: ['resize', '-f', 'raw', 'e.raw', '+1M'], setup: ['truncate -s 1M e.raw'], image: 'e.raw', format: 'raw' },
  { args: ['resize', '-f', 'raw', 'e.raw', '+511'], setup: [': > e.raw'], image: 'e.raw', format: 'raw' },
  { args: ['create', '-f', 'raw', 'c.raw', '5000'], image: 'c.raw', format: 'raw' },
  { args: ['create', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'v.vmdk', '1M'], image: 'v-flat.vmdk', format: 'raw' },
  { args: ['create', '-f', 'qcow2', '-o', 'data_file=d.data,preallocation=falloc', 'd.qcow2', '4M'], image: 'd.data', format: 'raw' },
  { args: ['create', '-f', 'vpc', '-o', 'subformat=fixed', 'v.vhd', '1M'], image: 'v.vhd', format: 'raw' },
  { args: ['convert', '-f', 'raw', '-O', 'raw', 'z.raw', 'o.raw'], setup: ['truncate -s 1M z.raw'], image: 'o.raw', format: 'raw' },
];

describe('files vdisk grows from nothing are allocated as qemu-img allocates them', () => {
  it('map, info and check of the files equal qemu-img', async (t) => {
    if (!requireQemu(t)) return;
    const results = await pool(CASES, 4, (c, i) => runPair(dir.path, `a${i}`, c));
    // A vmdk descriptor's length follows its random CID (printed unpadded, as qemu does): compare the rest.
    const masked = (side: { files: readonly string[] }): readonly string[] => side.files.map((f) => f.replace(/^(\w+\.vmdk):\d+$/, '$1:*'));
    const diffs = pairDiffs(CASES, results.map(({ qemu, vdisk }) => ({ qemu: { ...qemu, files: masked(qemu) }, vdisk: { ...vdisk, files: masked(vdisk) } })), ['status', 'files', 'info', 'check', 'map']);
    assert.deepEqual(diffs, []);
  });
});
