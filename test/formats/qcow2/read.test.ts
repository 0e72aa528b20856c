/**
 * qcow2 read path against qemu-img: images made by qemu-img/qemu-io in many
 * variants, read whole through BlockDevice, compared byte for byte with
 * `qemu-img convert -O raw`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { hasQemu, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';

const SIZE = 4 * 1024 * 1024;

/** Reads the whole virtual disk through vdisk. */
async function readAll(path: string): Promise<Uint8Array> {
  const dev = await BlockDevice.open(path);
  try {
    const out = new Uint8Array(dev.size);
    const step = 1024 * 1024 + 4096; // deliberately not cluster-aligned
    for (let off = 0; off < dev.size; off += step) await dev.read(off, out.subarray(off, Math.min(dev.size, off + step)));
    return out;
  } finally {
    await dev.close();
  }
}

function rawOf(dir: string, image: string): Uint8Array {
  const out = join(dir, `${image}.raw`);
  qemuImgOk(['convert', '-O', 'raw', join(dir, image), out]);
  return readFileSync(out);
}

function assertSame(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: size`);
  if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) {
    let i = 0;
    while (a[i] === b[i]) i++;
    assert.fail(`${what}: first difference at byte ${i}`);
  }
}

const PATTERN = [
  'write -P 0xab 0 64k',
  'write -z 128k 64k',
  'discard 256k 64k',
  'write -P 0x11 300k 3k',
  'write -P 0x22 1M 1M',
  'write -P 0x33 3583k 2k',
  'write -z 1536k 100k',
];

const VARIANTS: Array<{ name: string; opts: string }> = [
  { name: 'compat 0.10', opts: 'compat=0.10' },
  { name: 'compat 1.1', opts: 'compat=1.1' },
  { name: 'cluster 512', opts: 'cluster_size=512' },
  { name: 'cluster 4k', opts: 'cluster_size=4k' },
  { name: 'cluster 64k', opts: 'cluster_size=64k' },
  { name: 'cluster 2M', opts: 'cluster_size=2M' },
  { name: 'refcount_bits 1', opts: 'refcount_bits=1' },
  { name: 'refcount_bits 64', opts: 'refcount_bits=64' },
  { name: 'extended_l2 64k', opts: 'extended_l2=on,cluster_size=64k' },
  { name: 'extended_l2 32k', opts: 'extended_l2=on,cluster_size=32k' },
  { name: 'lazy_refcounts', opts: 'lazy_refcounts=on' },
  { name: 'preallocation=metadata', opts: 'preallocation=metadata' },
  { name: 'compression_type=zstd', opts: 'compression_type=zstd' },
];

describe('qcow2 read path vs qemu-img', { skip: !hasQemu && process.env['CI'] !== 'true' ? 'qemu-img not installed' : false }, () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tmpDir();
  });
  after(() => dir.cleanup());

  for (const v of VARIANTS) {
    it(`reads a qemu-made ${v.name} image like qemu-img convert`, async (t) => {
      if (!requireQemu(t)) return;
      const name = `${v.name.replace(/[^a-z0-9]/gi, '_')}.qcow2`;
      const path = join(dir.path, name);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', v.opts, path, String(SIZE)]);
      qemuIo(path, PATTERN, 'qcow2');
      assertSame(await readAll(path), rawOf(dir.path, name), v.name);
    });
  }

  for (const ctype of ['zlib', 'zstd']) {
    it(`reads ${ctype}-compressed clusters (qemu-img convert -c)`, async (t) => {
      if (!requireQemu(t)) return;
      const src = join(dir.path, `src-${ctype}.qcow2`);
      qemuImgOk(['create', '-q', '-f', 'qcow2', src, String(SIZE)]);
      qemuIo(src, PATTERN, 'qcow2');
      const dst = join(dir.path, `c-${ctype}.qcow2`);
      qemuImgOk(['convert', '-c', '-O', 'qcow2', '-o', `compression_type=${ctype}`, src, dst]);
      const check = JSON.parse(qemuImgOk(['check', '--output=json', dst])) as { 'compressed-clusters'?: number };
      assert.ok((check['compressed-clusters'] ?? 0) > 0, 'image has compressed clusters');
      assertSame(await readAll(dst), rawOf(dir.path, `c-${ctype}.qcow2`), ctype);
    });
  }

  it('reads a 3-layer backing chain', async (t) => {
    if (!requireQemu(t)) return;
    const base = join(dir.path, 'base.qcow2');
    const mid = join(dir.path, 'mid.qcow2');
    const top = join(dir.path, 'top.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', base, String(SIZE)]);
    qemuIo(base, ['write -P 0x01 0 4M'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', '-o', 'cluster_size=4k', mid]);
    qemuIo(mid, ['write -P 0x02 5k 70k', 'write -z 1M 64k', 'discard 2M 64k'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', '-o', 'extended_l2=on', top, String(SIZE + 65536)]);
    qemuIo(top, ['write -P 0x03 7k 3k', 'write -z 1100k 8k', 'write -P 0x04 4M 64k'], 'qcow2');
    assertSame(await readAll(top), rawOf(dir.path, 'top.qcow2'), 'chain');
  });

  it('reads an image with an external data file', async (t) => {
    if (!requireQemu(t)) return;
    const img = join(dir.path, 'ext.qcow2');
    // An absolute name: qemu 7.2 resolves a relative data-file name against its cwd, not the image's directory.
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir.path, 'ext.data')}`, img, String(SIZE)]);
    qemuIo(img, PATTERN, 'qcow2');
    assertSame(await readAll(img), rawOf(dir.path, 'ext.qcow2'), 'data file');
  });
});
