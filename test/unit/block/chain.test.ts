/** The backing-chain resolver against hostile chains (no qemu-img needed). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { protocolOf } from '../../../src/block/resolver.js';
import { BackingLoopError, ChainDepthError, UnsafeReferenceError, VdiskError } from '../../../src/core/errors.js';
import { LINK_SIZE, linkRegistry, writeLink } from '../../helpers/link-driver.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const p = (name: string): string => join(dir.path, name);
const registry = linkRegistry();

async function openFails(path: string, check: (e: unknown) => boolean, options: object = {}): Promise<void> {
  await assert.rejects(BlockDevice.open(path, { registry, ...options }), check);
}

describe('backing chain resolver', () => {
  it('reads through a chain to a raw base, resolving names against the overlay directory', async () => {
    mkdirSync(p('sub'));
    writeFileSync(p('sub/base.raw'), Buffer.alloc(LINK_SIZE, 0x5a));
    writeLink(p('sub/mid.tl'), 'base.raw', 'raw');
    writeLink(p('top.tl'), 'sub/mid.tl');
    const dev = await BlockDevice.open(p('top.tl'), { registry });
    try {
      assert.equal(dev.layers.length, 3);
      assert.equal(dev.layers[2]?.filename, p('sub/base.raw'));
      const buf = new Uint8Array(4096);
      await dev.read(LINK_SIZE - 4096, buf);
      assert.ok(buf.every((b) => b === 0x5a));
      const st = await dev.blockStatus(0, LINK_SIZE);
      assert.equal(st.depth, 2);
    } finally {
      await dev.close();
    }
  });

  it('refuses a self-loop and a two-image loop (ELOOP), by inode not by name', async () => {
    writeLink(p('self.tl'), 'self.tl');
    await openFails(p('self.tl'), (e) => e instanceof BackingLoopError && e.code === 'ELOOP' && /creates an infinite loop/.test(e.message));
    writeLink(p('a.tl'), 'b.tl');
    writeLink(p('b.tl'), './a.tl');
    await openFails(p('a.tl'), (e) => e instanceof BackingLoopError);
    symlinkSync(p('c.tl'), p('c-link.tl'));
    writeLink(p('c.tl'), 'c-link.tl');
    await openFails(p('c.tl'), (e) => e instanceof BackingLoopError);
  });

  it('caps chain depth (EDEPTH) and says how to raise the cap', async () => {
    writeFileSync(p('deep-0.raw'), Buffer.alloc(512));
    writeLink(p('deep-1.tl'), 'deep-0.raw', 'raw');
    for (let i = 2; i <= 300; i++) writeLink(p(`deep-${i}.tl`), `deep-${i - 1}.tl`, 'tlink');
    await openFails(p('deep-300.tl'), (e) => e instanceof ChainDepthError && e.code === 'EDEPTH' && /maxChainDepth/.test(e.message));
    const dev = await BlockDevice.open(p('deep-300.tl'), { registry, maxChainDepth: 400 });
    assert.equal(dev.layers.length, 301);
    await dev.close();
  });

  it('never opens a FIFO, a directory or a device named as backing file', async () => {
    execFileSync('mkfifo', [p('fifo')]);
    writeLink(p('to-fifo.tl'), 'fifo', 'raw');
    await openFails(p('to-fifo.tl'), (e) => e instanceof UnsafeReferenceError && /'file' driver requires '[^']*fifo' to be a regular file/.test(e.message));
    mkdirSync(p('adir'));
    writeLink(p('to-dir.tl'), 'adir', 'raw');
    await openFails(p('to-dir.tl'), (e) => e instanceof UnsafeReferenceError && /'file' driver requires '[^']*adir' to be a regular file/.test(e.message));
    writeLink(p('to-dev.tl'), '/dev/zero', 'raw');
    await openFails(p('to-dev.tl'), (e) => e instanceof UnsafeReferenceError && /device/.test(e.message));
  });

  it('refuses json: and protocol names without touching what they name', async () => {
    writeLink(p('json.tl'), 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/hostname"}}');
    await openFails(p('json.tl'), (e) => e instanceof UnsafeReferenceError && /'json:'/.test(e.message));
    writeLink(p('nbd.tl'), 'nbd://127.0.0.1:1/x', 'raw');
    await openFails(p('nbd.tl'), (e) => e instanceof UnsafeReferenceError && /'nbd:'/.test(e.message));
    writeLink(p('ssh.tl'), 'ssh://127.0.0.1:1/x', 'raw');
    await openFails(p('ssh.tl'), (e) => e instanceof VdiskError && e.code === 'EUNSUPPORTED', { allowProtocols: true });
    assert.equal(protocolOf('http://x'), 'http');
    assert.equal(protocolOf('C:disk.img'), undefined);
    assert.equal(protocolOf('base.qcow2'), undefined);
  });

  it('confines references to the image directory in untrusted mode', async () => {
    mkdirSync(p('jail'));
    writeFileSync(p('outside.raw'), Buffer.alloc(LINK_SIZE, 1));
    writeFileSync(p('jail/inside.raw'), Buffer.alloc(LINK_SIZE, 2));
    writeLink(p('jail/up.tl'), '../outside.raw', 'raw');
    writeLink(p('jail/abs.tl'), p('outside.raw'), 'raw');
    symlinkSync(p('outside.raw'), p('jail/sneaky.raw'));
    writeLink(p('jail/sym.tl'), 'sneaky.raw', 'raw');
    writeLink(p('jail/ok.tl'), 'inside.raw', 'raw');
    for (const name of ['up.tl', 'abs.tl', 'sym.tl']) {
      await openFails(p(`jail/${name}`), (e) => e instanceof UnsafeReferenceError && /untrusted/.test(e.message), { trust: 'untrusted' });
    }
    const dev = await BlockDevice.open(p('jail/ok.tl'), { registry, trust: 'untrusted' });
    await dev.close();
    // qemu mode follows them, as qemu-img does
    const up = await BlockDevice.open(p('jail/up.tl'), { registry });
    await up.close();
  });

  it('follows no reference at all in trust mode none', async () => {
    await openFails(p('jail/ok.tl'), (e) => e instanceof UnsafeReferenceError && /'none'/.test(e.message), { trust: 'none' });
  });

  it('opens only the top image when backing is disabled', async () => {
    const dev = await BlockDevice.open(p('a.tl'), { registry, backing: false });
    assert.equal(dev.layers.length, 1);
    await dev.close();
  });
});
