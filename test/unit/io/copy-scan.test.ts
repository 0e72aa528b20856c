/**
 * The native copy request (io/copy-scan.ts) finds exactly the sparse runs
 * the JavaScript scan finds (jobs/sparse-scan.ts, qemu's
 * is_allocated_sectors_min), for every sparse size, target alignment and
 * length, and writes exactly the data runs; with no input file
 * (scanWrite: a network source's bytes) it scans and writes what the
 * buffer holds.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { strerror } from '../../../src/core/strerror.js';
import { canCopyScan, copyScan, scanWrite } from '../../../src/io/copy-scan.js';
import { sparseAlignment, sparseRuns } from '../../../src/jobs/sparse-scan.js';
import { tmpDir } from '../../helpers/qemu.js';
import { rng, sparsePattern } from '../../helpers/fuzz.js';

const dir = tmpDir('vdisk-copy-scan-');
after(() => dir.cleanup());

/** Zero and data pieces of random lengths (helpers/fuzz.ts). */
const pattern = (length: number, rand: () => number): Uint8Array => sparsePattern(length, rand, { largest: 65536, oneByte: 0.3, randomData: false });

describe('native copy requests', { skip: canCopyScan() ? false : 'native module not built' }, () => {
  it('find the runs the JavaScript scan finds', async () => {
    const rand = rng(1234);
    const file = join(dir.path, 'src.bin');
    for (let round = 0; round < 120; round++) {
      const length = [1, 511, 512, 4097, 65536, 300_001, 2 * 1024 * 1024][round % 7] as number;
      const data = pattern(length, rand);
      writeFileSync(file, data);
      const fd = openSync(file, 'r');
      try {
        for (const sparseSize of [0, 512, 1536, 4096, 65536, 16 * 1024 * 1024]) {
          const guest = [0, 512, 4096 * 3, 1234567][round % 4] as number;
          const buf = new Uint8Array(length);
          const runs = await copyScan({ fd, name: file }, 0, undefined, 0, buf, length, { guest, minBytes: sparseSize, alignment: sparseAlignment(sparseSize) });
          assert.deepEqual(buf, data);
          assert.deepEqual(runs, sparseRuns(data, guest, sparseSize), `round ${round}, length ${length}, -S ${sparseSize}, at ${guest}`);
        }
      } finally {
        closeSync(fd);
      }
    }
  });

  it('scan each block-status unit on its own, as the JavaScript scan does', async () => {
    const rand = rng(4321);
    const file = join(dir.path, 'units.bin');
    for (let round = 0; round < 60; round++) {
      const length = [4097, 65536, 300_001, 1024 * 1024][round % 4] as number;
      const data = pattern(length, rand);
      writeFileSync(file, data);
      const fd = openSync(file, 'r');
      try {
        for (const sparseSize of [512, 4096, 16 * 1024 * 1024]) {
          const guest = [0, 512, 4096 * 3, 1234567][round % 4] as number;
          const unit = { size: [4096, 65536, 1024 * 1024][round % 3] as number, base: [0, 1024][round % 2] as number };
          const buf = new Uint8Array(length);
          const runs = await copyScan({ fd, name: file }, 0, undefined, 0, buf, length, { guest, minBytes: sparseSize, alignment: sparseAlignment(sparseSize), unit });
          const what = `round ${round}, length ${length}, -S ${sparseSize}, at ${guest}, unit ${unit.size}+${unit.base}`;
          assert.deepEqual(runs, sparseRuns(data, guest, sparseSize, unit), what);
          // Each unit's runs are those of the unit scanned alone (neighbouring runs of one kind joined).
          const alone: number[] = [];
          for (let pos = 0; pos < length; ) {
            const n = Math.min(length - pos, unit.size - ((((guest + pos - unit.base) % unit.size) + unit.size) % unit.size));
            for (const r of sparseRuns(data.subarray(pos, pos + n), guest + pos, sparseSize)) {
              if (alone.length > 0 && alone[alone.length - 1]! > 0 === r > 0) alone[alone.length - 1]! += r;
              else alone.push(r);
            }
            pos += n;
          }
          assert.deepEqual(runs, alone, what);
        }
      } finally {
        closeSync(fd);
      }
    }
  });

  it('read zeros past the end of the file and write only the data runs', async () => {
    const from = join(dir.path, 'short.bin');
    const to = join(dir.path, 'target.bin');
    const data = new Uint8Array(20_000);
    data.fill(7, 0, 1000);
    data.fill(9, 12_288, 13_000);
    writeFileSync(from, data.subarray(0, 13_000));
    writeFileSync(to, new Uint8Array(40_000).fill(0xee));
    const fdIn = openSync(from, 'r');
    const fdOut = openSync(to, 'r+');
    try {
      const runs = await copyScan({ fd: fdIn, name: from }, 0, { fd: fdOut, name: to }, 4096, new Uint8Array(data.length), data.length, { guest: 4096, minBytes: 4096, alignment: 8 });
      assert.deepEqual(runs, sparseRuns(data, 4096, 4096));
      const out = readFileSync(to);
      let pos = 4096;
      for (const r of runs) {
        const n = Math.abs(r);
        // data runs are written; zero runs are left to the caller (here: the old 0xee bytes stay)
        assert.deepEqual(out.subarray(pos, pos + n), r > 0 ? Buffer.from(data.subarray(pos - 4096, pos - 4096 + n)) : Buffer.alloc(n, 0xee));
        pos += n;
      }
    } finally {
      closeSync(fdIn);
      closeSync(fdOut);
    }
  });

  it('with nothing to scan (-S 0), copy in the kernel and write zeros past the source end', async () => {
    const from = join(dir.path, 'k-short.bin');
    const to = join(dir.path, 'k-target.bin');
    const data = new Uint8Array(10_000).fill(5);
    writeFileSync(from, data);
    writeFileSync(to, new Uint8Array(30_000).fill(0xee));
    const fdIn = openSync(from, 'r');
    const fdOut = openSync(to, 'r+');
    try {
      const runs = await copyScan({ fd: fdIn, name: from }, 1000, { fd: fdOut, name: to }, 512, new Uint8Array(16_384), 16_384, { guest: 512, minBytes: 0, alignment: 1 });
      assert.deepEqual(runs, [16_384]);
      const out = readFileSync(to);
      assert.deepEqual(out.subarray(0, 512), Buffer.alloc(512, 0xee));
      assert.deepEqual(out.subarray(512, 512 + 9000), Buffer.alloc(9000, 5));
      assert.deepEqual(out.subarray(512 + 9000, 512 + 16_384), Buffer.alloc(16_384 - 9000));
      assert.deepEqual(out.subarray(512 + 16_384), Buffer.alloc(30_000 - 512 - 16_384, 0xee));
    } finally {
      closeSync(fdIn);
      closeSync(fdOut);
    }
  });

  it('word failures as the file store does', async () => {
    const file = join(dir.path, 'wo.bin');
    writeFileSync(file, new Uint8Array(4096));
    const fd = openSync(file, 'w');
    try {
      await assert.rejects(copyScan({ fd, name: 'wo.bin' }, 0, undefined, 0, new Uint8Array(4096), 4096, { guest: 0, minBytes: 4096, alignment: 8 }), {
        code: 'EIO',
        message: `Could not read 'wo.bin' at offset 0: ${strerror('EBADF')}`,
      });
    } finally {
      closeSync(fd);
    }
  });
  it('scanWrite: no input file, the runs of the buffer found and only its data runs written', async () => {
    const rand = rng(99);
    const to = join(dir.path, 'sw-target.bin');
    for (let round = 0; round < 40; round++) {
      const length = [1, 512, 4097, 65536, 300_001, 2 * 1024 * 1024][round % 6] as number;
      const data = pattern(length, rand);
      const sparseSize = [0, 512, 4096, 65536][round % 4] as number;
      const at = [0, 512, 4096 * 3][round % 3] as number;
      writeFileSync(to, new Uint8Array(at + length + 4096).fill(0xee));
      const fd = openSync(to, 'r+');
      try {
        const buf = data.slice();
        const runs = await scanWrite({ fd, name: to }, at, buf, length, { guest: at, minBytes: sparseSize, alignment: sparseAlignment(sparseSize) });
        assert.deepEqual(runs, sparseRuns(data, at, sparseSize), `round ${round}, length ${length}, -S ${sparseSize}, at ${at}`);
        assert.deepEqual(buf, data, 'the buffer is not changed');
        const out = readFileSync(to);
        assert.deepEqual(out.subarray(0, at), Buffer.alloc(at, 0xee));
        let pos = at;
        for (const r of runs) {
          const n = Math.abs(r);
          assert.deepEqual(out.subarray(pos, pos + n), r > 0 ? Buffer.from(data.subarray(pos - at, pos - at + n)) : Buffer.alloc(n, 0xee), `round ${round}: run at ${pos}`);
          pos += n;
        }
        assert.deepEqual(out.subarray(pos), Buffer.alloc(4096, 0xee));
      } finally {
        closeSync(fd);
      }
    }
  });

  it('scanWrite: a failed write is worded as a write of the file store', async () => {
    const file = join(dir.path, 'ro.bin');
    writeFileSync(file, new Uint8Array(4096));
    const fd = openSync(file, 'r');
    try {
      await assert.rejects(scanWrite({ fd, name: 'ro.bin' }, 8192, new Uint8Array(4096).fill(1), 4096, { guest: 8192, minBytes: 4096, alignment: 8 }), {
        code: 'EIO',
        message: `Could not write 'ro.bin' at offset 8192: ${strerror('EBADF')}`,
      });
    } finally {
      closeSync(fd);
    }
  });
});
