/** The check untrusted mode makes on an opened reference (block/resolver.ts). */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { UnsafeReferenceError } from '../../../src/core/errors.js';
import { openedReferenceCheck } from '../../../src/block/resolver.js';

const dir = mkdtempSync(join(tmpdir(), 'vdisk-refs-opened-'));
after(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'up'));
writeFileSync(join(dir, 'up', 'in.bin'), 'in');
writeFileSync(join(dir, 'out.bin'), 'out');
symlinkSync('../out.bin', join(dir, 'up', 'escape.bin'));
const referrer = join(dir, 'up', 'top.vmdk');
const check = (name: string) => openedReferenceCheck(name, referrer, 'extent', join(dir, 'up'), { trust: 'untrusted' });

/** Runs the check on `path` opened for real. */
async function onOpened(path: string, name = 'x'): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await check(name)?.(fd, statSync(path), path);
  } finally {
    closeSync(fd);
  }
}

describe('openedReferenceCheck', () => {
  it('is only made under untrusted', () => {
    assert.equal(openedReferenceCheck('x', referrer, 'extent', dir, { trust: 'qemu' }), undefined);
    assert.equal(openedReferenceCheck('x', referrer, 'extent', dir, {}), undefined);
  });

  it('accepts a file inside, refuses one the descriptor shows outside and one with several links', async () => {
    await onOpened(join(dir, 'up', 'in.bin'));
    await assert.rejects(onOpened(join(dir, 'up', 'escape.bin')), (e) => e instanceof UnsafeReferenceError && /outside/.test(e.message));
    linkSync(join(dir, 'out.bin'), join(dir, 'up', 'hard.bin'));
    await assert.rejects(onOpened(join(dir, 'up', 'hard.bin')), (e) => e instanceof UnsafeReferenceError && /2 hard links/.test(e.message));
  });

  it('without /proc/self/fd, trusts the name only while it still leads to the opened file', async () => {
    const noFd = 0x7fffffff; // readlink of /proc/self/fd/<this> fails, as where there is no procfs
    const inside = join(dir, 'up', 'in.bin');
    await check('in.bin')?.(noFd, statSync(inside), inside);
    const other = { ...statSync(inside), ino: statSync(join(dir, 'out.bin')).ino };
    await assert.rejects(Promise.resolve(check('in.bin')?.(noFd, other, inside)), (e) => e instanceof UnsafeReferenceError && /changed while it was opened/.test(e.message));
    const outside = join(dir, 'up', 'escape.bin');
    await assert.rejects(Promise.resolve(check('escape.bin')?.(noFd, statSync(outside), outside)), /outside/);
  });
});
