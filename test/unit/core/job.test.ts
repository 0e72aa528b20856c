import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Job } from '../../../src/core/job.js';
import { AbortError } from '../../../src/core/errors.js';
import type { JobProgress } from '../../../src/core/progress.js';

describe('Job', () => {
  it('is awaitable and reports progress and state', async () => {
    const seen: JobProgress[] = [];
    const states: string[] = [];
    const job = new Job(async (ctx) => {
      ctx.progress.phase('copy', 100);
      ctx.progress.advance(50);
      ctx.progress.finish();
      return 42;
    }, { onProgress: (p) => seen.push(p) });
    job.on('state', (s) => states.push(s));
    assert.equal(await job, 42);
    assert.deepEqual(states, ['running', 'done']);
    assert.deepEqual(seen.at(-1), { phase: 'copy', done: 100, total: 100, percent: 100, bytesPerSecond: seen.at(-1)?.bytesPerSecond, eta: 0 });
    assert.ok(seen.every((p, i) => i === 0 || p.done >= (seen[i - 1]?.done ?? 0) || p.phase !== seen[i - 1]?.phase));
  });

  it('rejects with AbortError when cancelled', async () => {
    const job = new Job(async (ctx) => {
      await new Promise((r) => setTimeout(r, 20));
      ctx.signal.throwIfAborted();
      return 1;
    });
    job.cancel();
    await assert.rejects(job, (e: unknown) => e instanceof AbortError && e.code === 'EABORTED');
    assert.equal(job.state, 'aborted');
  });

  it('honours an already-aborted caller signal', async () => {
    let ran = false;
    const job = new Job(async () => {
      ran = true;
    }, { signal: AbortSignal.abort() });
    await assert.rejects(job, AbortError);
    assert.equal(ran, false);
  });

  it('passes errors through', async () => {
    const job = new Job(async () => {
      throw new RangeError('x');
    });
    await assert.rejects(job, RangeError);
    assert.equal(job.state, 'failed');
  });
});
