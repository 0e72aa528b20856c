/**
 * Devices named on the command line, as qemu-img opens them (its
 * host_device driver): character devices (/dev/null, /dev/zero) always, and
 * block devices through a loop device when this machine can make one
 * (root, loop support; skipped loudly otherwise). Every command's output,
 * errors and exit status equal qemu-img's on the same device: sizes by
 * seeking to the end (fstat says 0), a device that is all data, targets
 * written in place, a device that cannot grow or be resized. The SDK still
 * refuses devices unless asked (`allowDevices`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';

import { UnsafeReferenceError } from '../../src/core/errors.js';
import { open } from '../../src/index.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-devices-');
const loops: string[] = [];
after(() => {
  for (const l of loops) spawnSync('losetup', ['-d', l]);
  dir.cleanup();
});
const at = (n: string): string => join(dir.path, n);

/** Runs `args` through both tools (qemu-img first): same stdout, stderr and status. */
function same(args: readonly string[], env: NodeJS.ProcessEnv = {}): void {
  const theirs = qemuImg(args);
  const ours = vdisk(args, { env });
  assert.equal(ours.stderr, asVdisk(theirs.stderr), `stderr of ${args.join(' ')}`);
  assert.equal(ours.status, theirs.status, `exit status of ${args.join(' ')}`);
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${args.join(' ')}`);
}

/** A loop device over a new file of `mib` MiB filled with 0xa5, or undefined (and a loud skip) when none can be made. */
function loop(t: TestContext, mib: number): string | undefined {
  const file = at(`loop-${loops.length}.img`);
  writeFileSync(file, Buffer.alloc(mib * 1024 * 1024, 0xa5));
  const r = spawnSync('losetup', ['-f', '--show', file], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`\n*** no loop device (${(r.stderr || r.error?.message || '').trim()}): block device tests are SKIPPED (they need root and loop support) ***\n\n`);
    t.skip('no loop device');
    return undefined;
  }
  const dev = r.stdout.trim();
  loops.push(dev);
  return dev;
}

function source(): string {
  const img = at('src.qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', img, '8M']);
  qemuIo(img, ['write -P 7 0 1M', 'write -P 9 3M 64k', 'write -z 5M 1M'], 'qcow2');
  return img;
}

describe('devices named on the command line', () => {
  it('character devices: info, map and compare of /dev/null and /dev/zero equal qemu-img (0 bytes)', (t) => {
    if (!requireQemu(t)) return;
    for (const dev of ['/dev/null', '/dev/zero']) {
      same(['info', dev]);
      same(['info', '--output=json', dev]);
      same(['map', '--output=json', dev]);
      same(['compare', dev, dev]);
    }
  });

  it('a block device: info, map, check, compare and convert out of it equal qemu-img, with and without the native module', (t) => {
    if (!requireQemu(t)) return;
    const dev = loop(t, 16);
    if (!dev) return;
    const img = source();
    qemuImgOk(['convert', '-n', '-O', 'raw', img, dev]);
    for (const env of [{}, { VDISK_NO_NATIVE: '1' }]) {
      same(['info', dev], env);
      same(['info', '--output=json', dev], env);
      same(['map', dev], env);
      same(['map', '--output=json', dev], env);
      same(['check', dev], env);
      same(['compare', img, dev], env);
      same(['compare', '-s', img, dev], env);
    }
    const out = at('from-dev.raw');
    const r = vdisk(['convert', '-O', 'raw', dev, out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(dev)), 'the device read back whole');
  });

  it('a block device as the target: convert (with and without -n), dd and create write it in place, as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const dev = loop(t, 16);
    if (!dev) return;
    const img = source();
    const refill = (): void => writeFileSync(dev, Buffer.alloc(16 * 1024 * 1024, 0xa5));
    for (const args of [
      ['convert', '-O', 'raw', img, dev],
      ['convert', '-n', '-O', 'raw', img, dev],
      ['convert', '-O', 'qcow2', img, dev],
      ['dd', `if=${img}`, `of=${dev}`, '-O', 'raw'],
    ]) {
      refill();
      const r = vdisk(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      // The image's first 8 MiB (zeros written where the device held 0xa5); the rest of the device is left as it was.
      assert.equal(qemuImg(['compare', '-f', 'qcow2', '-F', args.includes('qcow2') ? 'qcow2' : 'raw', img, dev]).stdout.split('\n').at(-2), args.includes('qcow2') ? 'Images are identical.' : 'Content mismatch at offset 8388608!', args.join(' '));
      if (args.includes('qcow2')) assert.equal(qemuImg(['check', dev]).status, 0, 'qemu-img check of the qcow2 on the device');
    }
    // Nothing was made beside the device, nothing renamed over it.
    assert.equal(spawnSync('sh', ['-c', `ls -a /dev | grep -c vdisk`], { encoding: 'utf8' }).stdout.trim(), '0');
    same(['create', '-f', 'raw', dev, '8M']);
  });

  it("a device cannot grow or be resized: convert, create and resize fail in qemu-img's words", (t) => {
    if (!requireQemu(t)) return;
    const dev = loop(t, 4);
    if (!dev) return;
    const img = source();
    same(['convert', '-O', 'raw', img, dev]);
    same(['convert', '-n', '-O', 'raw', img, dev]);
    same(['create', '-f', 'raw', dev, '8M']);
    same(['resize', '-f', 'raw', dev, '8M']);
    same(['resize', '-f', 'raw', dev, '2M']);
    same(['resize', '-f', 'raw', dev, '4M']);
  });

  it("preallocation on a device is refused in qemu-img's words (raw and qcow2; create, convert, resize)", (t) => {
    if (!requireQemu(t)) return;
    const dev = loop(t, 16);
    if (!dev) return;
    const img = source();
    for (const mode of ['falloc', 'full']) {
      same(['create', '-f', 'raw', '-o', `preallocation=${mode}`, dev, '8M']);
      same(['convert', '-O', 'raw', '-o', `preallocation=${mode}`, img, dev]);
      same(['create', '-f', 'qcow2', '-o', `preallocation=${mode}`, dev, '8M']);
      same(['convert', '-O', 'qcow2', '-o', `preallocation=${mode}`, img, dev]);
    }
    same(['create', '-f', 'qcow2', '-o', 'preallocation=metadata', dev, '8M']);
    same(['create', '-f', 'qcow2', dev, '8M']);
    same(['resize', '--preallocation=falloc', dev, '12M']);
    same(['resize', '--preallocation=full', dev, '12M']);
    same(['resize', dev, '12M']);
    assert.equal(qemuImg(['check', dev]).status, 0);
  });

  it("a device's create options are host_device's: nocow and extent_size_hint unknown, preallocation off only, -o help says so", (t) => {
    if (!requireQemu(t)) return;
    const img = source();
    // /dev/null is a character device everywhere: these all fail before anything is written.
    for (const target of ['/dev/null', 'host_device:/dev/null']) {
      for (const format of ['raw', 'qcow2', 'vpc']) {
        same(['create', '-f', format, '-o', 'nocow=on', target, '1M']);
        same(['create', '-f', format, '-o', 'extent_size_hint=1M', target, '1M']);
        same(['create', '-f', format, '-o', 'help', target]);
      }
      same(['create', '-f', 'raw', '-o', 'preallocation=metadata', target, '1M']);
      same(['create', '-f', 'raw', '-o', 'preallocation=bogus', target, '1M']);
      same(['convert', '-O', 'raw', '-o', 'nocow=on', img, target]);
      same(['convert', '-O', 'raw', '-o', 'preallocation=metadata', img, target]);
      same(['convert', '-O', 'qcow2', '-o', 'help', img, target]);
    }
    // Valid options on /dev/null: raw goes through (nothing to flush there); qcow2 fails where qemu reopens the image it wrote.
    for (const size of ['0', '511', '1M']) {
      same(['create', '-f', 'raw', '/dev/null', size]);
      same(['create', '-f', 'qcow2', '/dev/null', size]);
      same(['create', '-f', 'qcow2', '-o', 'preallocation=full', '/dev/null', size]);
    }
    same(['convert', '-O', 'qcow2', img, '/dev/null']);
    // A regular file keeps the file protocol's list.
    same(['create', '-f', 'raw', '-o', 'help', at('plain.raw')]);
    same(['create', '-f', 'raw', '-o', 'preallocation=metadata', at('plain.raw'), '1M']);
    const dev = loop(t, 4);
    if (!dev) return;
    same(['create', '-f', 'raw', '-o', 'nocow=off', dev, '1M']);
    same(['create', '-f', 'qcow2', '-o', 'preallocation=metadata,extent_size_hint=0', dev, '1M']);
    same(['create', '-f', 'raw', '-o', 'preallocation=off', dev, '1M']);
    same(['create', '-f', 'raw', '-o', 'help', dev]);
  });

  it('the SDK refuses a device unless allowDevices (an untrusted name must not reach /dev)', async () => {
    await assert.rejects(open('/dev/null'), (e: unknown) => e instanceof UnsafeReferenceError);
    const img = await open('/dev/zero', { allowDevices: true });
    try {
      assert.equal(img.size, 0);
    } finally {
      await img.close();
    }
  });

  it('a backing file that names a device is still refused', (t) => {
    if (!requireQemu(t)) return;
    const top = at('over-dev.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', '/dev/zero', '-F', 'raw', top, '1M']);
    const r = vdisk(['map', top]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Refusing to open backing file '\/dev\/zero': it is a device, not a regular file/);
  });
});

describe('names that are no regular file, and targets that cannot be made', () => {
  it("a directory as source or target, and a target in a missing directory, fail in qemu-img's words", (t) => {
    if (!requireQemu(t)) return;
    const img = source();
    const d = at('a-dir');
    mkdirSync(d, { recursive: true });
    same(['info', d]);
    same(['info', `file:${d}`]);
    same(['convert', '-O', 'raw', d, at('never.raw')]);
    same(['convert', '-O', 'raw', img, d]);
    same(['create', '-f', 'raw', d, '1M']);
    same(['create', '-f', 'qcow2', d, '1M']);
    for (const fmt of ['raw', 'qcow2']) {
      same(['create', '-f', fmt, at(`missing/x.${fmt}`), '1M']);
      same(['convert', '-O', fmt, img, at(`missing/x.${fmt}`)]);
    }
  });

  it('a FIFO named on the command line is refused at once in the same words (qemu-img would block opening it)', () => {
    const fifo = at('a-fifo');
    spawnSync('mkfifo', [fifo]);
    const r = vdisk(['info', fifo], { timeoutMs: 10_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `vdisk: Could not open '${fifo}': 'file' driver requires '${fifo}' to be a regular file\n`);
  });
});
