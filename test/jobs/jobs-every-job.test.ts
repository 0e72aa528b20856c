/**
 * Every job is a Job (awaitable, `cancel()`, `signal`, `state`) and takes a
 * path or a ByteStore wherever it takes an image (no qemu-img needed).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { Job } from '../../src/core/job.js';
import type { JobProgress } from '../../src/core/progress.js';
import { open } from '../../src/block/open.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import type { ByteStore } from '../../src/io/byte-store.js';
import { amend } from '../../src/jobs/amend.js';
import { bench } from '../../src/jobs/bench.js';
import { bitmap } from '../../src/jobs/bitmap.js';
import { check } from '../../src/jobs/check.js';
import { commit } from '../../src/jobs/commit.js';
import { compare } from '../../src/jobs/compare.js';
import { convert } from '../../src/jobs/convert.js';
import { create } from '../../src/jobs/create.js';
import { dd } from '../../src/jobs/dd.js';
import { measure } from '../../src/jobs/measure.js';
import { rebase } from '../../src/jobs/rebase.js';
import { resize } from '../../src/jobs/resize.js';
import { snapshot } from '../../src/jobs/snapshot.js';
import { tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-jobs-every-');
after(() => dir.cleanup());
let serial = 0;
const fresh = (name: string): string => join(dir.path, `${serial++}-${name}`);
const MiB = 1 << 20;

type Image = string | ByteStore;
/** A new image of each kind: a path, or a MemoryStore holding it. */
const KINDS: Record<string, (name: string, opts?: Parameters<typeof create>[1]) => Promise<Image>> = {
  path: async (name, opts) => {
    const file = fresh(name);
    await create(file, { format: 'qcow2', size: 4 * MiB, ...opts });
    return file;
  },
  MemoryStore: async (name, opts) => {
    const store = new MemoryStore(name);
    await create(store, { format: 'qcow2', size: 4 * MiB, ...opts });
    return store;
  },
};

/** A qcow2 overlay (of the kind asked for) over a qcow2 base file. */
async function overlay(kind: string): Promise<Image> {
  const base = fresh('base.qcow2');
  await create(base, { format: 'qcow2', size: 4 * MiB });
  return KINDS[kind]!('top.qcow2', { backingFile: base, backingFormat: 'qcow2', size: undefined });
}

/** An output of the same kind as the input: a new path, or a new store. */
const output = (kind: string, name: string): Image => (kind === 'path' ? fresh(name) : new MemoryStore(name));

/** Each job, started on an image of `kind` (the image made first, so the job itself starts unobserved). */
const JOBS: Record<string, (kind: string) => Promise<() => Job<unknown>>> = {
  create: async (kind) => {
    const out = output(kind, 'new.qcow2');
    return () => create(out, { format: 'qcow2', size: MiB });
  },
  check: async (kind) => {
    const img = await KINDS[kind]!('c.qcow2');
    return () => check(img);
  },
  compare: async (kind) => {
    const [a, b] = [await KINDS[kind]!('a.qcow2'), await KINDS[kind]!('b.qcow2')];
    return () => compare(a, b);
  },
  measure: async (kind) => {
    const img = await KINDS[kind]!('m.qcow2');
    return () => measure(img, { targetFormat: 'qcow2' });
  },
  commit: async (kind) => {
    const img = await overlay(kind);
    return () => commit(img);
  },
  rebase: async (kind) => {
    const img = await overlay(kind);
    return () => rebase(img, undefined, { unsafe: true });
  },
  amend: async (kind) => {
    const img = await KINDS[kind]!('am.qcow2');
    return () => amend(img, { options: 'lazy_refcounts=on' });
  },
  resize: async (kind) => {
    const img = await KINDS[kind]!('r.qcow2');
    return () => resize(img, '+1M');
  },
  snapshot: async (kind) => {
    const img = await KINDS[kind]!('s.qcow2');
    return () => snapshot(img, { action: 'create', name: 'before' });
  },
  bitmap: async (kind) => {
    const img = await KINDS[kind]!('b.qcow2');
    return () => bitmap(img, 'b0', [{ op: 'add' }]);
  },
  dd: async (kind) => {
    const img = await KINDS[kind]!('dd.qcow2');
    const out = output(kind, 'dd.raw');
    return () => dd(img, out, { blockSize: 65536, count: 4 });
  },
  bench: async (kind) => {
    const img = await KINDS[kind]!('bench.qcow2');
    return () => bench(img, { count: 8, bufferSize: 4096 });
  },
  convert: async (kind) => {
    const img = await KINDS[kind]!('cv.qcow2');
    const out = output(kind, 'cv.raw');
    return () => convert(img, out);
  },
};

describe('every job returns a Job, on a path and on a MemoryStore', () => {
  for (const kind of Object.keys(KINDS)) {
    for (const [name, make] of Object.entries(JOBS)) {
      it(`${name} on a ${kind} runs to 'done'`, async () => {
        const job = (await make(kind))();
        assert.ok(job instanceof Job, `${name} returns a Job`);
        assert.ok(job.signal instanceof AbortSignal);
        await job;
        assert.equal(job.state, 'done');
      });

      it(`${name} on a ${kind}: cancel() rejects with EABORTED and the state is 'aborted'`, async () => {
        const job = (await make(kind))();
        job.cancel();
        await assert.rejects(Promise.resolve(job), (err: Error & { code?: string }) => err.code === 'EABORTED');
        assert.equal(job.state, 'aborted');
        assert.ok(job.signal.aborted);
      });
    }
  }
});

describe('the jobs that were plain promises', () => {
  it('a cancelled resize, snapshot or bitmap leaves the image as it was', async () => {
    const store = new MemoryStore('same.qcow2');
    await create(store, { format: 'qcow2', size: 4 * MiB });
    const before = store.bytes();
    for (const job of [resize(store, '+1M'), snapshot(store, { action: 'create', name: 'x' }), bitmap(store, 'b', [{ op: 'add' }])]) {
      job.cancel();
      await assert.rejects(Promise.resolve(job), { code: 'EABORTED' });
    }
    assert.deepEqual(store.bytes(), before);
  });

  it('a caller signal aborted before the start refuses the job', async () => {
    const store = new MemoryStore('sig.qcow2');
    await create(store, { format: 'qcow2', size: MiB });
    const job = resize(store, '+1M', { signal: AbortSignal.abort() });
    await assert.rejects(Promise.resolve(job), { code: 'EABORTED' });
    assert.equal(job.state, 'aborted');
    assert.equal((await resize(store, '+0')).size, MiB);
  });

  it('create, resize, snapshot and bitmap report progress ending in one 100% event', async () => {
    const store = new MemoryStore('prog.qcow2');
    const jobs: (() => Job<unknown>)[] = [
      () => create(store, { format: 'qcow2', size: MiB }),
      () => resize(store, '+1M'),
      () => snapshot(store, { action: 'create', name: 's' }),
      () => bitmap(store, 'b', [{ op: 'add' }, { op: 'disable' }]),
    ];
    for (const start of jobs) {
      const seen: JobProgress[] = [];
      const job = start();
      job.on('progress', (p) => seen.push(p));
      await job;
      assert.ok(seen.length > 0);
      assert.equal(seen.filter((p) => p.percent === 100).length, 1, JSON.stringify(seen));
      assert.equal(seen.at(-1)!.percent, 100);
      assert.equal(seen.at(-1)!.done, seen.at(-1)!.total);
    }
    const dev = await open(store);
    assert.equal(dev.size, 2 * MiB);
    await dev.close();
  });
});
