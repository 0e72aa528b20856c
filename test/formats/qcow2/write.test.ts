/**
 * qcow2 write path against qemu-img: images created and written by vdisk
 * (random partial writes, zero writes, discards, compressed clusters,
 * overlays on qemu-made bases) must pass `qemu-img check` with no leaks and
 * `qemu-img compare` equal to a raw model written the same way.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import type { OptionValue } from '../../../src/formats/driver.js';
import { rng } from '../../helpers/fuzz.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { createFile } from './helpers.js';

const SIZE = 8 * 1024 * 1024;

type Op = { kind: 'write' | 'zero' | 'zero-unmap' | 'discard'; offset: number; length: number; seed: number };

function ops(seed: number, count: number, size: number, unit: number): Op[] {
  const next = rng(seed);
  const out: Op[] = [];
  for (let i = 0; i < count; i++) {
    const r = next();
    const kind = r < 0.6 ? 'write' : r < 0.75 ? 'zero' : r < 0.85 ? 'zero-unmap' : 'discard';
    const aligned = next() < 0.4;
    let offset = Math.floor(next() * size);
    let length = 1 + Math.floor(next() * (next() < 0.2 ? 2 * 1024 * 1024 : 3 * unit));
    if (aligned) {
      offset = Math.floor(offset / unit) * unit;
      length = Math.max(unit, Math.floor(length / unit) * unit);
    }
    length = Math.min(length, size - offset);
    if (length > 0) out.push({ kind, offset, length, seed: Math.floor(next() * 2 ** 31) });
  }
  return out;
}

function fill(op: Op): Uint8Array {
  const next = rng(op.seed);
  const b = new Uint8Array(op.length);
  const v = 1 + Math.floor(next() * 254);
  b.fill(v);
  for (let i = 0; i < b.length; i += 509) b[i] = Math.floor(next() * 256);
  return b;
}

/** Applies ops to the device and to the model; discards without backing read as zero. */
async function apply(dev: BlockDevice, model: Uint8Array, list: Op[], backing: Uint8Array | undefined, unit: number): Promise<void> {
  for (const op of list) {
    if (op.kind === 'write') {
      const d = fill(op);
      await dev.write(op.offset, d);
      model.set(d, op.offset);
    } else if (op.kind === 'discard') {
      await dev.discard(op.offset, op.length);
      // Only whole clusters are dropped; they then read from the backing file.
      const first = Math.ceil(op.offset / unit) * unit;
      const end = op.offset + op.length === model.length ? model.length : Math.floor((op.offset + op.length) / unit) * unit;
      for (let p = first; p < end; p += unit) {
        const n = Math.min(unit, model.length - p);
        if (backing) model.set(backing.subarray(p, p + n), p);
        else model.fill(0, p, p + n);
      }
    } else {
      await dev.writeZeroes(op.offset, op.length, { mayUnmap: op.kind === 'zero-unmap' });
      model.fill(0, op.offset, op.offset + op.length);
    }
  }
}

function checkClean(path: string): Record<string, unknown> {
  const r = qemuImg(['check', '--output=json', path]);
  assert.equal(r.status, 0, `qemu-img check ${path}: ${r.stdout}${r.stderr}`);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(j['leaks'] ?? 0, 0, 'no leaks');
  assert.equal(j['corruptions'] ?? 0, 0, 'no corruptions');
  return j;
}

function compareRaw(path: string, model: Uint8Array, dir: string): void {
  const raw = join(dir, 'model.raw');
  writeFileSync(raw, model);
  const r = qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', path, raw]);
  assert.equal(r.status, 0, `qemu-img compare: ${r.stdout}${r.stderr}`);
}

const VARIANTS: Array<{ name: string; opts: Record<string, OptionValue> }> = [
  { name: 'defaults', opts: {} },
  { name: 'compat 0.10', opts: { compat: '0.10' } },
  { name: 'cluster 512, refcount_bits 1', opts: { cluster_size: 512, refcount_bits: 1 } },
  { name: 'cluster 4k, refcount_bits 64', opts: { cluster_size: 4096, refcount_bits: 64 } },
  { name: 'cluster 2M', opts: { cluster_size: 2 * 1024 * 1024 } },
  { name: 'extended_l2 32k', opts: { extended_l2: true, cluster_size: 32768 } },
  { name: 'extended_l2 64k', opts: { extended_l2: true } },
  { name: 'lazy_refcounts', opts: { lazy_refcounts: true } },
  { name: 'preallocation=metadata', opts: { preallocation: 'metadata' } },
];

describe('qcow2 write path vs qemu-img', { skip: !hasQemu && process.env['CI'] !== 'true' ? 'qemu-img not installed' : false }, () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tmpDir();
  });
  after(() => dir.cleanup());

  VARIANTS.forEach((v, vi) => {
    it(`writes a ${v.name} image that qemu-img checks clean and compares equal`, async (t) => {
      if (!requireQemu(t)) return;
      const path = join(dir.path, `w${vi}.qcow2`);
      await createFile(path, SIZE, v.opts);
      checkClean(path);
      const unit = Number(v.opts['cluster_size'] ?? 65536);
      const model = new Uint8Array(SIZE);
      const dev = await BlockDevice.open(path, { readOnly: false });
      try {
        await apply(dev, model, ops(1000 + vi, 120, SIZE, unit), undefined, unit);
      } finally {
        await dev.close();
      }
      checkClean(path);
      compareRaw(path, model, dir.path);
    });
  });

  it('writes an overlay on a qemu-made base (copy-on-write from the backing file)', async (t) => {
    if (!requireQemu(t)) return;
    const base = join(dir.path, 'base.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', base, String(SIZE)]);
    qemuIo(base, ['write -P 0x5a 0 8M', 'write -P 0x11 1M 100k', 'write -z 6M 64k'], 'qcow2');
    const baseRaw = join(dir.path, 'base.raw');
    qemuImgOk(['convert', '-O', 'raw', base, baseRaw]);
    const backing = new Uint8Array(readFileSync(baseRaw));
    const top = join(dir.path, 'top.qcow2');
    await createFile(top, SIZE, { backing_file: 'base.qcow2', backing_fmt: 'qcow2' });
    const model = backing.slice();
    const dev = await BlockDevice.open(top, { readOnly: false });
    try {
      await apply(dev, model, ops(77, 150, SIZE, 65536), backing, 65536);
    } finally {
      await dev.close();
    }
    checkClean(top);
    compareRaw(top, model, dir.path);
    const info = JSON.parse(qemuImgOk(['info', '--output=json', top])) as Record<string, unknown>;
    assert.equal(info['backing-filename'], 'base.qcow2');
    assert.equal(info['backing-filename-format'], 'qcow2');
  });

  it('writes an extended_l2 overlay (subcluster copy-on-write)', async (t) => {
    if (!requireQemu(t)) return;
    const base = join(dir.path, 'xbase.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', base, String(SIZE)]);
    qemuIo(base, ['write -P 0x6b 0 8M'], 'qcow2');
    const baseRaw = join(dir.path, 'xbase.raw');
    qemuImgOk(['convert', '-O', 'raw', base, baseRaw]);
    const backing = new Uint8Array(readFileSync(baseRaw));
    const top = join(dir.path, 'xtop.qcow2');
    await createFile(top, SIZE, { backing_file: 'xbase.qcow2', backing_fmt: 'qcow2', extended_l2: true });
    const model = backing.slice();
    const dev = await BlockDevice.open(top, { readOnly: false });
    try {
      await apply(dev, model, ops(78, 150, SIZE, 65536), backing, 65536);
    } finally {
      await dev.close();
    }
    checkClean(top);
    compareRaw(top, model, dir.path);
  });

  for (const ctype of ['zlib'] as const) {
    it(`writes ${ctype}-compressed clusters`, async (t) => {
      if (!requireQemu(t)) return;
      const path = join(dir.path, `cw-${ctype}.qcow2`);
      await createFile(path, SIZE, { compression_type: ctype, cluster_size: 65536 });
      const model = new Uint8Array(SIZE);
      const dev = await BlockDevice.open(path, { readOnly: false });
      try {
        for (let c = 0; c < SIZE / 65536; c += 1 + (c % 3)) {
          const d = new Uint8Array(65536);
          for (let i = 0; i < d.length; i++) d[i] = (i * (c + 1)) % 251 < 40 ? c : 0;
          await dev.writeCompressed(c * 65536, d);
          model.set(d, c * 65536);
        }
        // Rewrite part of a compressed cluster: copy-on-write from the decompressed data.
        const patch = new Uint8Array(1000).fill(0xee);
        await dev.write(65536 + 100, patch);
        model.set(patch, 65536 + 100);
      } finally {
        await dev.close();
      }
      const j = checkClean(path);
      assert.ok(Number(j['compressed-clusters'] ?? 0) > 0, 'compressed clusters written');
      compareRaw(path, model, dir.path);
    });
  }

  it('writes through an external data file', async (t) => {
    if (!requireQemu(t)) return;
    const path = join(dir.path, 'ext.qcow2');
    await createFile(path, SIZE, { data_file: join(dir.path, 'ext.data') });
    const model = new Uint8Array(SIZE);
    const dev = await BlockDevice.open(path, { readOnly: false });
    try {
      await apply(dev, model, ops(5, 80, SIZE, 65536), undefined, 65536);
    } finally {
      await dev.close();
    }
    checkClean(path);
    compareRaw(path, model, dir.path);
  });
});
