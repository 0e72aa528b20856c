/**
 * dmg bounds vdisk adds to QEMU's (QEMU allocates whatever a resource fork
 * claims): a single resource above LIMITS.dmgMaxResourceBytes and a fork
 * of more than LIMITS.dmgMaxResources resources are refused as
 * EUNSUPPORTED before anything is allocated or walked; QEMU's own checks
 * (a zero or overlong resource) fail as EINVAL.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { UnsupportedError, InvalidArgumentError } from '../../../src/core/errors.js';
import { LIMITS } from '../../../src/core/limits.js';
import type { ByteStore } from '../../../src/io/byte-store.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

/** A koly trailer naming a resource fork at `[0, forkLength)`, placed at `at`. */
function koly(forkLength: number, sectors = 8): Uint8Array {
  const k = new Uint8Array(512);
  const v = new DataView(k.buffer);
  v.setUint32(0, 0x6b6f6c79);
  v.setBigUint64(0x28, 0n);
  v.setBigUint64(0x30, BigInt(forkLength));
  v.setBigUint64(0x1ec, BigInt(sectors));
  return k;
}

/** A read-only store of `size` bytes holding `parts` at their offsets and zeros elsewhere (nothing allocated for the rest). */
function sparse(size: number, parts: readonly [number, Uint8Array][]): ByteStore {
  const store = new MemoryStore('sparse.dmg');
  return Object.assign(Object.create(store) as ByteStore, {
    name: 'sparse.dmg',
    readOnly: true,
    size: async () => size,
    read: async (offset: number, into: Uint8Array) => {
      into.fill(0);
      for (const [at, bytes] of parts) {
        const from = Math.max(at, offset);
        const to = Math.min(at + bytes.length, offset + into.length);
        if (from < to) into.set(bytes.subarray(from - at, to - at), from - offset);
      }
      return into.length;
    },
    close: async () => {},
  });
}

function fork(dataLength: number, resources: readonly number[]): Uint8Array {
  const out = new Uint8Array(256 + resources.length * 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 256);
  v.setUint32(8, dataLength);
  resources.forEach((n, i) => v.setUint32(256 + i * 4, n));
  return out;
}

const open = (store: ByteStore) => BlockDevice.open(store, { format: 'dmg', readOnly: true, backing: false });

describe('dmg resource fork bounds', () => {
  it('refuses a resource larger than the cap before reading it', async () => {
    const len = LIMITS.dmgMaxResourceBytes + 1024 * 1024;
    const store = sparse(len + 512, [[0, fork(len - 256, [LIMITS.dmgMaxResourceBytes + 1])], [len, koly(len)]]);
    await assert.rejects(open(store), (e: unknown) => e instanceof UnsupportedError && /dmg resource of \d+ bytes/.test(e.message));
  });

  it('refuses a fork of more resources than the cap', async () => {
    // each resource: a length of 1 and one byte
    const n = LIMITS.dmgMaxResources + 1;
    const body = new Uint8Array(n * 5);
    for (let i = 0; i < n; i++) new DataView(body.buffer).setUint32(i * 5, 1);
    const head = fork(body.length, []);
    const img = new Uint8Array(256 + body.length + 512);
    img.set(head);
    img.set(body, 256);
    img.set(koly(256 + body.length), 256 + body.length);
    await assert.rejects(open(new MemoryStore('many.dmg', img)), (e: unknown) => e instanceof UnsupportedError && /more than 65536 resources/.test(e.message));
  });

  it('fails a zero-length or overlong resource with EINVAL, as qemu does', async () => {
    for (const count of [0, 1000]) {
      const img = new Uint8Array(256 + 8 + 512);
      img.set(fork(8, [count]));
      img.set(koly(256 + 8), 256 + 8);
      await assert.rejects(open(new MemoryStore('bad.dmg', img)), (e: unknown) => e instanceof InvalidArgumentError && /Invalid argument/.test(e.message));
    }
  });
});
