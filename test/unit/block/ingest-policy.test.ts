/**
 * The ingest policy through the SDK. Enforced by the block
 * layer's open for every job; wrapped uploads given as stores are inflated
 * into the policy's private directory, unlinked at once, and the caller's
 * store stays theirs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { create, info, MemoryStore, open, PolicyError } from '../../../src/index.js';
import { isVdiskError } from '../../../src/core/errors.js';
import { mapAll } from '../../../src/jobs/map.js';

const scratch = mkdtempSync(join(tmpdir(), 'vdisk-ingest-policy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A small qcow2 image's bytes, made by vdisk. */
async function qcow2Bytes(size = 1 << 20): Promise<Uint8Array> {
  const file = join(scratch, `img-${size}.qcow2`);
  await create(file, { format: 'qcow2', size });
  return new Uint8Array(readFileSync(file));
}

describe('ingest policy (SDK)', () => {
  it('a format off the allow-list is refused with EPOLICY by every job', async () => {
    const bytes = await qcow2Bytes();
    for (const job of [(s: MemoryStore) => info(s, { policy: { allowedFormats: ['raw'] } }), (s: MemoryStore) => mapAll(s, { policy: { allowedFormats: ['raw'] } })]) {
      await assert.rejects(job(new MemoryStore('up.qcow2', bytes, { readOnly: true })), (err: unknown) => isVdiskError(err) && err.code === 'EPOLICY' && err instanceof PolicyError);
    }
  });

  it('a virtual size above the cap is refused', async () => {
    const bytes = await qcow2Bytes(4 << 20);
    await assert.rejects(info(new MemoryStore('up.qcow2', bytes, { readOnly: true }), { policy: { maxVirtualSize: 1 << 20 } }), /Virtual size 4194304/);
  });

  it('a gzip-wrapped store is inflated privately in the policy tmpDir, which stays empty, and the store stays open', async () => {
    const gz = new MemoryStore('up.qcow2.gz', gzipSync(await qcow2Bytes()), { readOnly: true });
    const tmp = mkdtempSync(join(scratch, 'tmp-'));
    const dev = await open(gz, { policy: { tmpDir: tmp } });
    try {
      assert.equal(dev.top.format, 'qcow2');
      assert.deepEqual(readdirSync(tmp), [], 'the inflated copy has no name');
    } finally {
      await dev.close();
    }
    assert.equal(await gz.read(0, new Uint8Array(2)), 2, 'the caller\'s store is still open');
  });

  it('maxInflatedSize stops inflation with EPOLICY', async () => {
    const gz = new MemoryStore('bomb.raw.gz', gzipSync(new Uint8Array(8 << 20)), { readOnly: true });
    await assert.rejects(open(gz, { policy: { maxInflatedSize: 1 << 20 } }), (err: unknown) => isVdiskError(err) && err.code === 'EPOLICY');
  });
});
