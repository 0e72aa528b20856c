/** ProgressMeter and Job progress: percent, a sliding-window rate and ETA on a fake clock, one 100% event, silence after abort. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Job } from '../../src/core/job.js';
import { ProgressMeter, type JobProgress } from '../../src/core/progress.js';
import { RateWindow } from '../../src/core/rate-window.js';

/** A clock the test moves by hand. */
function fakeClock(): { now: () => number; tick: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, tick: (ms) => void (t += ms) };
}

function meter(options: { intervalMs?: number; windowMs?: number } = {}): { m: ProgressMeter<'copy' | 'verify'>; seen: JobProgress[]; tick: (ms: number) => void } {
  const clock = fakeClock();
  const seen: JobProgress[] = [];
  const m = new ProgressMeter<'copy' | 'verify'>((p) => seen.push(p), { intervalMs: 0, ...options, clock: clock.now });
  return { m, seen, tick: clock.tick };
}

describe('ProgressMeter', () => {
  it('reports percent of the phase with two decimals, below 100 until the job completes', () => {
    const { m, seen } = meter();
    m.phase('copy', 3000);
    m.advance(1000);
    assert.equal(seen.at(-1)?.percent, 33.33);
    m.advance(2000);
    assert.equal(seen.at(-1)?.done, 3000);
    assert.equal(seen.at(-1)?.percent, 99.99);
    m.finish(); // already said: no second event
    assert.equal(seen.length, 3);
    m.complete();
    assert.deepEqual(seen.map((p) => p.percent), [0, 33.33, 99.99, 100]);
    assert.equal(seen.at(-1)?.eta, 0);
    assert.equal(seen.at(-1)?.phase, 'copy');
  });

  it('measures the rate over a sliding window, not since the start, and derives the eta from it', () => {
    const { m, seen, tick } = meter({ windowMs: 1000 });
    m.phase('copy', 100_000);
    assert.equal(seen.at(-1)?.bytesPerSecond, 0);
    assert.equal(seen.at(-1)?.eta, undefined);
    for (let i = 0; i < 20; i++) {
      tick(100);
      m.advance(1000); // 10 000 B/s
    }
    assert.equal(seen.at(-1)?.bytesPerSecond, 10_000);
    assert.equal(seen.at(-1)?.eta, 8); // 80 000 left
    for (let i = 0; i < 20; i++) {
      tick(100);
      m.advance(100); // 1 000 B/s; the average since the start would be 5 500
    }
    const last = seen.at(-1) as JobProgress;
    assert.equal(last.done, 22_000);
    assert.ok(Math.abs(last.bytesPerSecond - 1000) <= 100, `rate ${last.bytesPerSecond}`);
    assert.equal(last.eta, Math.ceil((78_000 * 10) / last.bytesPerSecond) / 10);
  });

  it('throttles events inside the interval unless a whole percent passes', () => {
    const { m, seen, tick } = meter({ intervalMs: 100 });
    m.phase('copy', 100_000);
    m.advance(10); // same whole percent, inside the interval: dropped
    assert.equal(seen.length, 1);
    m.advance(1000); // a whole percent passed
    assert.equal(seen.length, 2);
    tick(150);
    m.advance(10); // the interval passed
    assert.equal(seen.length, 3);
  });

  it('starts each phase at 0 and keeps 100 for the single final event', () => {
    const { m, seen } = meter();
    m.phase('copy', 10);
    m.finish();
    m.phase('verify', 10);
    m.advance(10);
    m.finish();
    m.complete();
    m.complete();
    assert.deepEqual(seen.map((p) => [p.phase, p.percent]), [['copy', 0], ['copy', 99.99], ['verify', 0], ['verify', 99.99], ['verify', 100]]);
  });

  it('emits nothing once stopped, and nothing for a job that never started a phase', () => {
    const { m, seen } = meter();
    m.advance(5);
    m.finish();
    m.complete();
    assert.equal(seen.length, 0);
    const other = meter();
    other.m.phase('copy', 10);
    other.m.stop();
    other.m.advance(5);
    other.m.finish();
    other.m.complete();
    assert.equal(other.seen.length, 1);
  });
});

describe('RateWindow', () => {
  it('is 0 until the span is long enough to tell', () => {
    const r = new RateWindow(1000, 50);
    r.reset(0, 0);
    r.record(10, 500);
    assert.equal(r.rate(10, 500), 0);
    assert.equal(r.rate(100, 500), 5000);
  });
});

describe('Job progress', () => {
  it('emits exactly one 100% event, the last, after the body succeeds', async () => {
    const seen: JobProgress<'copy'>[] = [];
    const job = new Job<number, 'copy'>(async (ctx) => {
      ctx.progress.phase('copy', 100);
      ctx.progress.advance(100);
      ctx.progress.finish();
      return 7;
    }, { onProgress: (p) => seen.push(p) });
    let settled = false;
    job.on('state', (s) => void (s === 'done' && (settled = true)));
    job.on('progress', () => assert.equal(settled, false));
    assert.equal(await job, 7);
    assert.equal(seen.filter((p) => p.percent === 100).length, 1);
    assert.equal(seen.at(-1)?.percent, 100);
  });

  it('emits nothing after cancel(), even if the body goes on', async () => {
    const seen: JobProgress[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let leaked: ProgressMeter | undefined;
    const job = new Job(async (ctx) => {
      leaked = ctx.progress;
      ctx.progress.phase('copy', 100);
      ctx.progress.advance(10);
      await gate;
      // A body that ignores its signal a while longer must still be silent.
      ctx.progress.advance(50);
      ctx.progress.finish();
      ctx.signal.throwIfAborted();
    }, { onProgress: (p) => seen.push(p) });
    job.on('progress', (p) => {
      if (p.done === 10) job.cancel();
    });
    await new Promise((r) => setImmediate(r));
    release();
    await assert.rejects(job);
    assert.equal(job.state, 'aborted');
    assert.deepEqual(seen.map((p) => p.done), [0, 10]);
    leaked?.advance(1);
    assert.equal(seen.length, 2);
  });

  it('emits nothing after the caller signal aborts, and nothing for a late success', async () => {
    const ac = new AbortController();
    const seen: JobProgress[] = [];
    const job = new Job(async (ctx) => {
      ctx.progress.phase('copy', 100);
      ac.abort();
      ctx.progress.advance(100);
      return 1; // finished anyway: no 100% event for a job the caller aborted
    }, { signal: ac.signal, onProgress: (p) => seen.push(p) });
    await job;
    assert.deepEqual(seen.map((p) => p.percent), [0]);
  });

  it('emits nothing after the job settles', async () => {
    let leaked: ProgressMeter | undefined;
    const seen: JobProgress[] = [];
    await new Job(async (ctx) => {
      leaked = ctx.progress;
      ctx.progress.phase('copy', 100);
    }, { onProgress: (p) => seen.push(p) });
    const count = seen.length;
    leaked?.phase('copy', 5);
    leaked?.advance(5);
    assert.equal(seen.length, count);
  });
});
