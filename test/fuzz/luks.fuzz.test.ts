/**
 * Fuzz: mutated LUKS headers and key material of a small luks image made
 * in memory by vdisk's create. Every case ends in a typed VdiskError or a
 * successful open and read; PBKDF2 counts are capped low so no case
 * derives for long. `VDISK_FUZZ_ITERATIONS` raises the case count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { VdiskError } from '../../src/core/errors.js';
import { luksDriver } from '../../src/formats/luks/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { expectTypedOrOk, iterations, mutate, rng } from '../helpers/fuzz.js';

const noExternal = { open: () => Promise.reject(new VdiskError('EUNSAFE', 'user', 'no external files in fuzz')) };
const secrets = { s0: 'pw' };

async function makeBase(): Promise<Uint8Array> {
  const store = new MemoryStore('base.luks');
  const options = new Map<string, string | number>([['key-secret', 's0'], ['iter-time', 0], ['cipher-alg', 'aes-128']]);
  await luksDriver.create!(store, { size: 64 * 1024, options, filename: 'base.luks', external: noExternal, secrets });
  return store.bytes();
}

describe('luks fuzz: hostile headers fail typed, never hang', () => {
  it('mutated header and key material', async () => {
    const base = await makeBase();
    const next = rng(0x1005);
    const count = iterations(40);
    let opened = 0;
    for (let i = 0; i < count; i++) {
      const bytes = new Uint8Array(base);
      // the header most of the time, sometimes slot 0's key material
      mutate(bytes, next, next() < 0.8 ? 592 : 4096 + 32000);
      const result = await expectTypedOrOk(`case ${i}`, async () => {
        const dev = await BlockDevice.open(new MemoryStore(`case${i}.luks`, bytes, { readOnly: true }), {
          format: 'luks', readOnly: true, secrets, runtime: [['key-secret', 's0']], maxPbkdf2Iterations: 100_000,
        });
        try {
          await dev.read(0, new Uint8Array(4096));
        } finally {
          await dev.close();
        }
      });
      if (result === 'ok') opened++;
    }
    assert.ok(opened >= 0);
  });
});
