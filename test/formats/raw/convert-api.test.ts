/** convert through the API: cancellation, same-file refusal, concatenation, temp files. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { convert } from '../../../src/jobs/convert.js';
import { AbortError, VdiskError } from '../../../src/core/errors.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

function randomFile(name: string, size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(x, i);
  }
  writeFileSync(p(name), b);
  return b;
}

describe('convert (API)', () => {
  it('concatenates several sources into one target', async () => {
    const a = randomFile('a.raw', 64 * 1024, 1);
    const b = randomFile('b.raw', 128 * 1024, 2);
    const result = await convert([p('a.raw'), p('b.raw')], p('ab.raw'), { sourceFormat: 'raw' });
    assert.equal(result.size, 192 * 1024);
    assert.ok(readFileSync(p('ab.raw')).equals(Buffer.concat([a, b])));
  });

  it('leaves no target and no temporary file when aborted, and the source unchanged', async () => {
    const src = randomFile('big.raw', 32 * 1024 * 1024, 3);
    const ac = new AbortController();
    const job = convert(p('big.raw'), p('aborted.raw'), { sourceFormat: 'raw', signal: ac.signal });
    job.on('progress', (pr) => {
      if (pr.done > 0) ac.abort();
    });
    await assert.rejects(job, AbortError);
    assert.equal(existsSync(p('aborted.raw')), false);
    assert.deepEqual(readdirSync(dir.path).filter((n) => n.includes('vdisk-')), []);
    assert.ok(readFileSync(p('big.raw')).equals(src));
    // a second convert afterwards succeeds
    await convert(p('big.raw'), p('aborted.raw'), { sourceFormat: 'raw' });
    assert.ok(readFileSync(p('aborted.raw')).equals(src));
  });

  it('refuses a target that is the source, whatever the spelling', async () => {
    const src = randomFile('same.raw', 8192, 4);
    symlinkSync(p('same.raw'), p('same-link.raw'));
    for (const target of [p('same.raw'), join(dir.path, '.', 'same.raw'), p('same-link.raw')]) {
      await assert.rejects(convert(p('same.raw'), target, { sourceFormat: 'raw' }), (e: unknown) => e instanceof VdiskError && e.code === 'EBUSY' && /Failed to get "write" lock/.test(e.message));
    }
    assert.ok(readFileSync(p('same.raw')).equals(src));
  });

  it('reports progress up to the total', async () => {
    randomFile('prog.raw', 4 * 1024 * 1024, 5);
    let last = { done: 0, total: 0 };
    await convert(p('prog.raw'), p('prog-out.raw'), { sourceFormat: 'raw', onProgress: (pr) => (last = pr) });
    assert.equal(last.done, last.total);
    assert.equal(last.total, 4 * 1024 * 1024);
  });
});
