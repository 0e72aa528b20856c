/**
 * The write lock convert takes once per write: a free lock is taken at once
 * (no promise round trip before the work starts), waiters are served first
 * come first served, and a release function works once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AsyncMutex } from '../../../src/core/mutex.js';

describe('AsyncMutex', () => {
  it('runs the work of a free lock at once, before any promise job', async () => {
    const m = new AsyncMutex();
    let started = false;
    const done = m.run(async () => {
      started = true;
    });
    assert.equal(started, true);
    await done;
  });

  it('serves waiters in arrival order, one at a time', async () => {
    const m = new AsyncMutex();
    const order: string[] = [];
    let inside = 0;
    const job = (name: string, ticks: number) =>
      m.run(async () => {
        inside++;
        assert.equal(inside, 1);
        order.push(`${name}+`);
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        order.push(`${name}-`);
        inside--;
      });
    await Promise.all([job('a', 3), job('b', 0), job('c', 2), job('d', 1)]);
    assert.deepEqual(order, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-', 'd+', 'd-']);
  });

  it('passes the lock on after a failure, and lock() and run() share one queue', async () => {
    const m = new AsyncMutex();
    const order: string[] = [];
    const release = await m.lock();
    const failing = m.run(async () => {
      order.push('fail');
      throw new Error('boom');
    });
    const after = m.run(async () => {
      order.push('after');
    });
    order.push('holder');
    release();
    await assert.rejects(failing, /boom/);
    await after;
    assert.deepEqual(order, ['holder', 'fail', 'after']);
  });

  it('ignores a second call of the same release function', async () => {
    const m = new AsyncMutex();
    const first = await m.lock();
    const second = m.lock();
    first();
    const release2 = await second;
    first(); // must not release the lock the second holder has now
    let thirdIn = false;
    const third = m.run(async () => {
      thirdIn = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(thirdIn, false);
    release2();
    await third;
    assert.equal(thirdIn, true);
  });
});
