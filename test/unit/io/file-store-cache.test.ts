import assert from 'node:assert/strict';
import { constants, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { isVdiskError } from '../../../src/core/errors.js';
import { parseCacheMode, type CacheMode } from '../../../src/core/cache-mode.js';
import { BouncePool, DirectIo, type DirectFile } from '../../../src/io/direct-io.js';
import { FileStore } from '../../../src/io/file-store.js';
import { native } from '../../../src/io/native.js';
import { tmpDir } from '../../helpers/qemu.js';

const MODES: readonly CacheMode[] = ['writeback', 'writethrough', 'none', 'directsync', 'unsafe'];
const DIRECT = new Set<CacheMode>(['none', 'directsync']);

/** A deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The flags of this process's open descriptors for `path`, from /proc/self/fdinfo. */
function openFlags(path: string): number[] {
  const out: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== path) continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const m = /^flags:\s*([0-7]+)/m.exec(info);
    if (m?.[1]) out.push(parseInt(m[1], 8));
  }
  return out;
}

/** Random unaligned writes, reads, truncates (some concurrent) against a byte model; sizes checked throughout. */
async function exercise(store: FileStore, seed: number, ops: number): Promise<Uint8Array> {
  const rand = rng(seed);
  const cap = 1024 * 1024;
  let model = new Uint8Array(0);
  const grow = (n: number): void => {
    if (n <= model.length) return;
    const m = new Uint8Array(n);
    m.set(model);
    model = m;
  };
  const randomRange = (): [number, number] => {
    const small = rand() < 0.7;
    const off = Math.floor(rand() * (small ? 64 * 1024 : cap - 300 * 1024));
    const len = 1 + Math.floor(rand() * (small ? 9000 : 280 * 1024));
    return [off, len];
  };
  for (let i = 0; i < ops; i++) {
    const r = rand();
    if (r < 0.45) {
      const [off, len] = randomRange();
      const data = new Uint8Array(len).map(() => (rand() * 256) | 0);
      await store.write(off, data);
      grow(off + len);
      model.set(data, off);
    } else if (r < 0.55) {
      // a batch of concurrent non-overlapping writes packed into a few blocks (RMW of shared edge blocks)
      const base = Math.floor(rand() * 40000);
      const writes: [number, Uint8Array][] = [];
      let at = base;
      for (let k = 0; k < 12; k++) {
        const len = 1 + Math.floor(rand() * 1500);
        writes.push([at, new Uint8Array(len).fill(1 + ((rand() * 250) | 0))]);
        at += len;
      }
      await Promise.all(writes.map(([o, d]) => store.write(o, d)));
      for (const [o, d] of writes) {
        grow(o + d.length);
        model.set(d, o);
      }
    } else if (r < 0.6) {
      // concurrent writes past the end in different blocks: each must not truncate away another's data
      const end = model.length;
      const writes: [number, Uint8Array][] = [0, 1, 2, 3].map((k) => [end + k * 5000 + Math.floor(rand() * 3000), new Uint8Array(100 + k).fill(200 + k)]);
      await Promise.all(writes.map(([o, d]) => store.write(o, d)));
      for (const [o, d] of writes) {
        grow(o + d.length);
        model.set(d, o);
      }
    } else if (r < 0.64) {
      const size = Math.floor(rand() * (model.length + 8192));
      await store.truncate(size);
      const m = new Uint8Array(size);
      m.set(model.subarray(0, size));
      model = m;
    } else {
      const [off, len] = randomRange();
      const reads = [0, 1, 2].map(async (k) => {
        const buf = new Uint8Array(len).fill(0xee);
        const got = await store.read(off + k * 7, buf);
        return { got, buf, off: off + k * 7 };
      });
      for (const { got, buf, off: o } of await Promise.all(reads)) {
        const expect = new Uint8Array(len);
        expect.set(model.subarray(o, o + len));
        assert.deepEqual(buf, expect, `read ${o}+${len} (seed ${seed}, op ${i})`);
        assert.equal(got, Math.max(0, Math.min(len, model.length - o)));
      }
    }
    assert.equal(await store.size(), model.length, `logical size after op ${i}`);
    assert.equal(statSync(store.name).size, model.length, `file size after op ${i}`);
  }
  return model;
}

for (const mode of MODES) {
  test(`cache=${mode}: random unaligned I/O matches a byte model, file size exact`, async (t) => {
    if (DIRECT.has(mode) && !native) return t.skip('native module not built');
    const dir = tmpDir('vdisk-cache-');
    try {
      const path = join(dir.path, 'f.img');
      const store = await FileStore.open(path, { readOnly: false, create: true, cache: mode });
      assert.equal(store.cache, mode);
      const model = await exercise(store, 7 + MODES.indexOf(mode), 120);
      await store.flush();
      await store.close();
      assert.deepEqual(new Uint8Array(readFileSync(path)), model);
      // reopen read-only with the same mode: reads agree with the file
      const ro = await FileStore.open(path, { cache: mode });
      const back = new Uint8Array(model.length + 5000);
      assert.equal(await ro.read(0, back), model.length);
      assert.deepEqual(back.subarray(0, model.length), model);
      assert.ok(back.subarray(model.length).every((b) => b === 0));
      await ro.close();
    } finally {
      dir.cleanup();
    }
  });
}

test('open flags follow the cache mode (O_DIRECT, O_DSYNC in /proc/self/fdinfo)', async (t) => {
  if (!existsSync('/proc/self/fdinfo')) return t.skip('no /proc');
  const dir = tmpDir('vdisk-cache-');
  try {
    for (const mode of MODES) {
      if (DIRECT.has(mode) && !native) continue;
      const path = join(dir.path, `${mode}.img`);
      const store = await FileStore.open(path, { readOnly: false, create: true, cache: mode });
      try {
        const flags = openFlags(path);
        assert.equal(flags.length, 1, `one descriptor open for ${path}`);
        const f = flags[0] ?? 0;
        assert.equal((f & constants.O_DIRECT) !== 0, DIRECT.has(mode), `${mode}: O_DIRECT`);
        assert.equal((f & constants.O_DSYNC) !== 0, mode === 'writethrough' || mode === 'directsync', `${mode}: O_DSYNC`);
      } finally {
        await store.close();
      }
    }
  } finally {
    dir.cleanup();
  }
});

test('a file system that refuses O_DIRECT fails the open with qemu-img wording', async (t) => {
  if (!native) return t.skip('native module not built');
  // procfs never supports O_DIRECT
  await assert.rejects(FileStore.open('/proc/version', { cache: 'none' }), (err: unknown) => {
    assert.ok(isVdiskError(err));
    assert.equal(err.code, 'EUNSUPPORTED');
    assert.equal(err.message, "Could not open '/proc/version': filesystem does not support O_DIRECT");
    return true;
  });
  // the same file opens without O_DIRECT
  await (await FileStore.open('/proc/version', { cache: 'writethrough' })).close();
  // tmpfs refuses O_DIRECT before Linux 6.6; either way the open must not silently fall back
  if (existsSync('/dev/shm')) {
    const path = `/dev/shm/vdisk-cache-${process.pid}.img`;
    try {
      const store = await FileStore.open(path, { readOnly: false, create: true, cache: 'none' }).catch((err: unknown) => err);
      if (store instanceof FileStore) {
        assert.ok(((openFlags(path)[0] ?? 0) & constants.O_DIRECT) !== 0);
        await store.write(3, new Uint8Array([1, 2, 3]));
        assert.equal(await store.size(), 6);
        await store.close();
      } else {
        assert.ok(isVdiskError(store));
        assert.match(store.message, /filesystem does not support O_DIRECT$/);
      }
    } finally {
      await import('node:fs/promises').then((fs) => fs.rm(path, { force: true }));
    }
  }
});

test('cache mode names parse as qemu parses them', () => {
  assert.equal(parseCacheMode('off'), 'none');
  for (const m of MODES) assert.equal(parseCacheMode(m), m);
  assert.throws(() => parseCacheMode('bogus'), /^InvalidArgumentError: Invalid cache option: bogus$|Invalid cache option: bogus/);
  assert.throws(() => parseCacheMode('bogus', 'source cache'), { message: 'Invalid source cache option: bogus' });
});

test('DirectIo issues only aligned I/O and serializes read-modify-write of shared blocks', async () => {
  // An in-memory "device" that rejects unaligned requests, like O_DIRECT, and yields between calls.
  const align = 512;
  let bytes = new Uint8Array(0);
  const check = (buf: Uint8Array, len: number, pos: number): void => {
    if (pos % align || len % align || buf.byteOffset % align) throw Object.assign(new Error('unaligned'), { code: 'EINVAL' });
  };
  const file: DirectFile = {
    async read(buf, len, pos) {
      check(buf, len, pos);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      const n = Math.max(0, Math.min(len, bytes.length - pos));
      buf.set(bytes.subarray(pos, pos + n));
      return n;
    },
    async write(buf, len, pos) {
      check(buf, len, pos);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      if (pos + len > bytes.length) {
        const b = new Uint8Array(pos + len);
        b.set(bytes);
        bytes = b;
      }
      bytes.set(buf.subarray(0, len), pos);
      return len;
    },
    async truncate(size) {
      const b = new Uint8Array(size);
      b.set(bytes.subarray(0, size));
      bytes = b;
    },
    async size() {
      return bytes.length;
    },
  };
  // Non-extending writes (the file already spans the blocks) are ordered only by the per-block locks.
  bytes = new Uint8Array(3 * align);
  const io = new DirectIo(file, 'mem', align, bytes.length, new BouncePool((n) => new Uint8Array(n)));
  const n = bytes.length;
  // one-byte writes side by side, all at once: each is a read-modify-write of a block others share
  await Promise.all(Array.from({ length: n }, (_, i) => io.write(i, new Uint8Array([(i % 251) + 1]))));
  for (let i = 0; i < n; i++) assert.equal(bytes[i], (i % 251) + 1, `byte ${i}`);
  // extending writes past the end, concurrently, in different blocks: the size ends exact, nothing cut off
  await Promise.all([0, 1, 2, 3].map((k) => io.write(n + k * 700 + 3, new Uint8Array(10).fill(k + 1))));
  assert.equal(io.size, n + 3 * 700 + 13);
  assert.equal(bytes.length, io.size);
  for (const k of [0, 1, 2, 3]) assert.ok(bytes.subarray(n + k * 700 + 3, n + k * 700 + 13).every((b) => b === k + 1), `extending write ${k}`);
  const out = new Uint8Array(io.size + 100);
  assert.equal(await io.read(0, out), io.size);
  assert.deepEqual(out.subarray(0, io.size), bytes);
});

test('DirectIo on a device (size not tracked) never truncates', async () => {
  const bytes = new Uint8Array(8192).fill(9);
  let truncated = false;
  const file: DirectFile = {
    read: async (buf, len, pos) => (buf.set(bytes.subarray(pos, pos + len)), Math.min(len, Math.max(0, bytes.length - pos))),
    write: async (buf, len, pos) => (bytes.set(buf.subarray(0, len), pos), len),
    truncate: async () => void (truncated = true),
    size: async () => 0, // devices report 0 from fstat
  };
  const io = new DirectIo(file, 'dev', 4096, undefined, new BouncePool((n) => new Uint8Array(n)));
  await io.write(4000, new Uint8Array(200).fill(1));
  await io.resizing(async () => undefined);
  assert.equal(truncated, false);
  assert.equal(io.size, Number.POSITIVE_INFINITY);
  assert.deepEqual(bytes.subarray(3999, 4201), new Uint8Array(202).fill(1).fill(9, 0, 1).fill(9, 201));
  const out = new Uint8Array(300);
  await io.read(3950, out);
  assert.deepEqual(out, bytes.subarray(3950, 4250));
});
