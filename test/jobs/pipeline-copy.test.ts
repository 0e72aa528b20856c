/**
 * The copy pipeline (jobs/copy-loop.ts over copy-plan.ts) on memory
 * stores: what it writes into a target, in which order, and that the
 * target then reads as the source.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { ProgressMeter } from '../../src/core/progress.js';
import type { ExternalFiles } from '../../src/formats/driver.js';
import { qcow2Driver } from '../../src/formats/qcow2/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { copyImage, type CopyCounters, type CopySettings } from '../../src/jobs/copy-loop.js';
import { traceDriver, type TraceCall } from '../helpers/trace-driver.js';

const KiB = 1024;
const SIZE = 1024 * KiB;
const noExternal: ExternalFiles = { open: () => Promise.reject(new Error('no external files here')) };

/** 1 MiB: data at [0, 64K) and [192K, 260K), a stray non-zero byte at 700K, zeros elsewhere. */
function sourceBytes(): Uint8Array {
  const b = new Uint8Array(SIZE);
  b.set(randomBytes(64 * KiB), 0);
  b.set(randomBytes(68 * KiB), 192 * KiB);
  b[700 * KiB + 5] = 9;
  return b;
}

function settings(targetIsZero: boolean): CopySettings {
  return {
    sparseSize: 4096,
    targetIsZero,
    targetHasBacking: false,
    compress: false,
    unit: 64 * KiB,
    bufferSize: 128 * KiB,
    parallel: 4,
    ordered: true,
    rateLimit: 0,
    signal: new AbortController().signal,
    progress: new ProgressMeter(() => undefined),
  };
}

async function source(bytes: Uint8Array): Promise<BlockDevice> {
  return BlockDevice.open(new MemoryStore('src.raw', bytes.slice()), { format: 'raw', readOnly: true });
}

async function readAll(dev: BlockDevice): Promise<Uint8Array> {
  const out = new Uint8Array(dev.size);
  await dev.read(0, out);
  return out;
}

/** Writes land in guest order, none overlapping another. */
function assertAscending(calls: readonly TraceCall[]): void {
  for (let i = 1; i < calls.length; i++) {
    const a = calls[i - 1]!;
    const b = calls[i]!;
    assert.ok(a.offset + a.length <= b.offset, `call ${i} at ${b.offset} starts before the previous one ends (${a.offset}+${a.length})`);
  }
}

describe('copy pipeline', () => {
  it('into a target that reads as zeros: only the data runs are written, in order', async () => {
    const bytes = sourceBytes();
    const src = await source(bytes);
    const t = traceDriver();
    const dst = await BlockDevice.open(new MemoryStore('dst', new Uint8Array(SIZE)), { format: 'trace', registry: t.registry, readOnly: false });
    const counters: CopyCounters = { dataBytes: 0, zeroBytes: 0 };
    await copyImage([src], dst, settings(true), counters);
    assert.deepEqual(await readAll(dst), bytes);
    assert.ok(t.calls.every((c) => c.op === 'write'), 'no zero writes into a zeroed target');
    assertAscending(t.calls);
    const written = t.calls.reduce((n, c) => n + c.length, 0);
    assert.equal(written, counters.dataBytes);
    // The data runs, rounded to the 4 KiB sparse granule: 64K + 68K + one granule around the stray byte.
    assert.equal(written, (64 + 68 + 4) * KiB);
    assert.equal(counters.zeroBytes, 0);
    await Promise.all([src.close(), dst.close()]);
  });

  it('into a target that may hold garbage: zero runs are written as zeros, every byte once, in order', async () => {
    const bytes = sourceBytes();
    const src = await source(bytes);
    const t = traceDriver();
    const dst = await BlockDevice.open(new MemoryStore('dst', new Uint8Array(randomBytes(SIZE))), { format: 'trace', registry: t.registry, readOnly: false });
    const counters: CopyCounters = { dataBytes: 0, zeroBytes: 0 };
    await copyImage([src], dst, settings(false), counters);
    assert.deepEqual(await readAll(dst), bytes);
    assertAscending(t.calls);
    assert.equal(t.calls.reduce((n, c) => n + c.length, 0), SIZE, 'the calls cover the image exactly once');
    assert.equal(counters.dataBytes + counters.zeroBytes, SIZE);
    assert.ok(t.calls.some((c) => c.op === 'zero'));
    await Promise.all([src.close(), dst.close()]);
  });

  it('into a new qcow2 image: same content, clusters allocated in guest order, check clean', async () => {
    const bytes = sourceBytes();
    const src = await source(bytes);
    const store = new MemoryStore('dst.qcow2');
    await qcow2Driver.create!(store, { size: SIZE, options: new Map(), filename: store.name, external: noExternal });
    const dst = await BlockDevice.open(store, { format: 'qcow2', readOnly: false });
    await copyImage([src], dst, settings(true), { dataBytes: 0, zeroBytes: 0 });
    await dst.flush();
    assert.deepEqual(await readAll(dst), bytes);
    let lastHost = -1;
    for (let at = 0; at < SIZE; ) {
      const st = await dst.topStatus(at, SIZE - at);
      if (st.data) {
        assert.ok(st.hostOffset !== undefined && st.hostOffset > lastHost, `data at ${at} lies after the data before it`);
        lastHost = st.hostOffset;
      }
      at += st.length;
    }
    const counts = await dst.check({ repair: 'none', log: () => undefined });
    assert.deepEqual([counts.corruptions, counts.leaks, counts.checkErrors], [0, 0, 0]);
    await Promise.all([src.close(), dst.close()]);
  });
});
