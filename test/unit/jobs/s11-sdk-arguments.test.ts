/**
 * JavaScript callers can pass anything: an image that is not a name, a
 * ByteStore or parsed image options, and map bounds that are not
 * non-negative integers, are refused with InvalidArgumentError (EINVAL)
 * before anything is read — not TypeErrors from deep inside, and not an
 * empty answer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { InvalidArgumentError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { check } from '../../../src/jobs/check.js';
import { compare } from '../../../src/jobs/compare.js';
import { convert } from '../../../src/jobs/convert.js';
import { create } from '../../../src/jobs/create.js';
import { dd } from '../../../src/jobs/dd.js';
import { info } from '../../../src/jobs/info.js';
import { map } from '../../../src/jobs/map.js';

const dir = mkdtempSync(join(tmpdir(), 'vdisk-s11-sdk-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const image = join(dir, 'a.raw');
writeFileSync(image, Buffer.alloc(1 << 20, 1));

const refused = (what: RegExp) => (err: unknown): boolean => err instanceof InvalidArgumentError && err.code === 'EINVAL' && what.test(err.message);

async function entries(options: Parameters<typeof map>[1]): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const e of map(image, { format: 'raw', ...options })) out.push(e);
  return out;
}

describe('SDK arguments', () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /not undefined$/],
    [null, /not null$/],
    [42, /not a number$/],
    [{}, /not an object without name, read, size, close$/],
    [{ name: 'x', read: 1, size: () => 0, close: () => undefined }, /not an object that is not a ByteStore$/],
  ];

  it('refuses images that are neither names, stores nor image options', async () => {
    for (const [value, tail] of bad) {
      const v = value as string;
      await assert.rejects(info(v), refused(new RegExp(`^The image must be a file name, a URL, a ByteStore or parsed image options, ${tail.source}`)));
      await assert.rejects(check(v), refused(/^The image must be/));
      await assert.rejects(compare(v, image), refused(/^The image must be/));
      await assert.rejects(convert(v, join(dir, 'o.raw')), refused(/^The source must be/));
      await assert.rejects(convert(image, v), refused(/^The target must be a file name, a URL, a ByteStore or parsed image options/));
      await assert.rejects(create(v, { format: 'raw', size: 1024 }), refused(/^The target must be a file name, a URL or a ByteStore/));
      await assert.rejects(dd(image, v), refused(/^The target must be a file name, a URL or a ByteStore/));
    }
  });

  it('takes a store', async () => {
    const store = new MemoryStore('mem', new Uint8Array(4096));
    const [r] = await info(store, { format: 'raw' });
    assert.equal(r?.virtualSize, 4096);
  });

  it('refuses map bounds that are not non-negative integers', async () => {
    for (const startOffset of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
      await assert.rejects(entries({ startOffset }), refused(/^Invalid start offset specified$/), String(startOffset));
    }
    for (const maxLength of [-1, 1.5, NaN, Infinity, 2 ** 60]) {
      await assert.rejects(entries({ maxLength }), refused(/^Invalid max length specified$/), String(maxLength));
    }
    assert.deepEqual(await entries({ maxLength: 0 }), []);
    assert.equal((await entries({ startOffset: 4096, maxLength: 4096 })).length, 1);
  });
});
