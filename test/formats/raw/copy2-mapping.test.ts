/**
 * Block status asks a raw image for its first extent only (mapping's
 * `maxExtents` hint 1): the image answers with that one, not with every
 * extent of its cached SEEK_DATA walk, which convert asked for once per run.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { FileStore } from '../../../src/io/file-store.js';
import { native } from '../../../src/io/native.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir('vdisk-copy2-map-');
after(() => dir.cleanup());

describe('raw mapping', { skip: native ? false : 'needs the native module (SEEK_DATA)' }, () => {
  it('honours the maxExtents hint and still maps the whole file without it', async () => {
    const file = join(dir.path, 'holes.raw');
    const fd = openSync(file, 'w');
    // Data every other MiB: 8 data extents with holes between them.
    for (let i = 0; i < 8; i++) writeSync(fd, new Uint8Array(65536).fill(i + 1), 0, 65536, i * 2 * 1024 * 1024);
    closeSync(fd);
    const dev = await BlockDevice.open(await FileStore.open(file, { readOnly: true }), { format: 'raw' });
    try {
      const image = dev.top.image;
      const size = image.virtualSize;
      const first = await image.mapping(0, size, 1);
      assert.equal(first.length, 1);
      assert.deepEqual({ kind: first[0]?.kind, offset: first[0]?.offset, length: first[0]?.length }, { kind: 'data', offset: 0, length: 65536 });
      // Served from the cached walk now: still one.
      const second = await image.mapping(65536, size - 65536, 1);
      assert.equal(second.length, 1);
      assert.equal(second[0]?.kind, 'zero');
      const all = await image.mapping(0, size);
      assert.equal(all.filter((e) => e.kind === 'data').length, 8);
      assert.equal(all.reduce((n, e) => n + e.length, 0), size);
    } finally {
      await dev.close();
    }
  });
});
