/**
 * Fuzz: `inspect` on mutated headers of every writable format and on
 * damaged gzip wrappers. Whatever the bytes, it returns a verdict (never
 * throws for a store it was given), and a verdict with an error or a
 * reference is never `safe`. `VDISK_FUZZ_ITERATIONS` raises the case count.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { inspect } from '../../src/jobs/inspect.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { iterations, mutate, rng } from '../helpers/fuzz.js';
import { hasQemu, qemuImgOk, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-ingest-fuzz-');
after(() => dir.cleanup());
const FORMATS = ['qcow2', 'vmdk', 'vdi', 'vpc', 'vhdx'];

describe('ingest fuzz: inspect always gives a verdict', () => {
  for (const format of FORMATS) {
    it(`${format}: mutated headers, plain and gzip-wrapped`, async (t) => {
      if (!hasQemu) return t.skip('qemu-img not installed');
      const file = join(dir.path, `base.${format}`);
      qemuImgOk(['create', '-q', '-f', format, file, '4M']);
      const base = readFileSync(file);
      const next = rng(0x1ce57 + format.length);
      const count = iterations(60);
      for (let i = 0; i < count; i++) {
        const bytes = new Uint8Array(base);
        mutate(bytes, next, 4096);
        const wrapped = next() < 0.25;
        let upload: Uint8Array = wrapped ? gzipSync(bytes) : bytes;
        if (wrapped && next() < 0.5) {
          upload = new Uint8Array(upload);
          mutate(upload, next, 64);
        }
        const v = await inspect(new MemoryStore(`case${i}.${format}`, upload, { readOnly: true }));
        assert.equal(typeof v.safe, 'boolean', `case ${i}`);
        assert.equal(v.safe, v.reasons.length === 0, `case ${i}`);
        if (v.references.length > 0) assert.equal(v.safe, false, `case ${i}: references`);
        for (const r of v.reasons) assert.ok(typeof r.code === 'string' && typeof r.message === 'string', `case ${i}`);
      }
    });
  }
});
