/** convert's progress events, as an SDK user sees them: on MemoryStores, typed phase, percent, rate, eta, one 100%. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { convert, type ConvertPhase } from '../../src/jobs/convert.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import type { JobProgress } from '../../src/core/progress.js';
import { AbortError } from '../../src/core/errors.js';

const SIZE = 8 * 1024 * 1024;

function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) b.fill((i / 4096) % 251 + 1, i, i + 2048);
  return b;
}

describe('convert progress', () => {
  it('reports phase, percent, bytesPerSecond and eta, with exactly one 100% event, the last', async () => {
    const data = pattern(SIZE);
    const source = new MemoryStore('src.raw', data);
    const target = new MemoryStore('dst.raw', new Uint8Array(SIZE));
    const seen: JobProgress<ConvertPhase>[] = [];
    const job = convert(source, target, { sourceFormat: 'raw', targetFormat: 'raw', noCreate: true });
    job.on('progress', (p) => seen.push(p));
    await job;
    assert.ok(seen.length >= 2);
    for (const p of seen) {
      assert.equal(p.phase, 'copy');
      assert.equal(p.total, SIZE);
      assert.ok(typeof p.percent === 'number' && p.percent >= 0 && p.percent <= 100);
      assert.ok(typeof p.bytesPerSecond === 'number' && p.bytesPerSecond >= 0);
      assert.ok(p.eta === undefined || (typeof p.eta === 'number' && p.eta >= 0));
    }
    assert.deepEqual(seen.filter((p) => p.percent === 100).length, 1);
    assert.deepEqual(seen.at(-1), { ...seen.at(-1), percent: 100, done: SIZE, eta: 0 });
    assert.ok(seen.every((p, i) => i === 0 || p.percent >= (seen[i - 1] as JobProgress).percent), 'percent never goes back');
    const out = new Uint8Array(SIZE);
    await target.read(0, out);
    assert.ok(Buffer.from(out).equals(Buffer.from(data)));
  });

  it('goes silent once cancelled', async () => {
    const source = new MemoryStore('src.raw', pattern(SIZE));
    const target = new MemoryStore('dst.raw', new Uint8Array(SIZE));
    const job = convert(source, target, { sourceFormat: 'raw', targetFormat: 'raw', noCreate: true, parallel: 1 });
    let cancelled = false;
    let after = 0;
    job.on('progress', (p) => {
      if (cancelled) after++;
      else if (p.done > 0) {
        cancelled = true;
        job.cancel();
      }
    });
    await assert.rejects(job, AbortError);
    assert.ok(cancelled);
    assert.equal(after, 0);
  });
});
