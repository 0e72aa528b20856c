/**
 * Growing and shrinking qcow2 images against qemu-img 7.2: a grown overlay
 * reads zeros where its backing file reaches past the old end (resize and
 * amend size=, extended L2 at subcluster granularity, shorter backing
 * files); compat=0.10 images with snapshots refuse every resize; persistent
 * bitmaps are resized with the image, and an inconsistent one refuses the
 * resize without any bitmap being read.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import { resize } from '../../src/index.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSameImage } from '../helpers/qsize-compare.js';

const dir = tmpDir('vdisk-qsize-grow-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (name: string): string => join(cwd, name);

/** Runs each step (`IMG` = the image) with both tools on copies of `image`; output and exit codes must match. */
function sameSteps(name: string, image: string, steps: readonly (readonly string[])[]): void {
  copyFileSync(image, at(`${name}-q.qcow2`));
  copyFileSync(image, at(`${name}-v.qcow2`));
  for (const step of steps) {
    const q = qemuImg(step.map((a) => (a === 'IMG' ? `${name}-q.qcow2` : a)), { cwd });
    const v = vdisk(step.map((a) => (a === 'IMG' ? `${name}-v.qcow2` : a)), { cwd });
    assert.equal(v.status, q.status, `${name}: ${step.join(' ')}: ${v.stderr}`);
    assert.equal(v.stderr, asVdisk(q.stderr).replaceAll(`${name}-q`, `${name}-v`), `${name}: ${step.join(' ')}`);
    assert.equal(v.stdout, q.stdout, `${name}: ${step.join(' ')}`);
  }
  assertSameImage(at(`${name}-q.qcow2`), at(`${name}-v.qcow2`), name);
}

/** A raw backing file of `size` filled with 0x09, and an overlay of 1M over it with some data of its own. */
function overlay(name: string, options: string, backingSize: string): string {
  qemuImgOk(['create', '-q', '-f', 'raw', at(`${name}.raw`), backingSize]);
  qemuIo(at(`${name}.raw`), [`write -P 9 0 ${backingSize}`], 'raw');
  const image = at(`${name}.qcow2`);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `${options},backing_file=${name}.raw,backing_fmt=raw`, image, '1M']);
  qemuIo(image, ['write -P 3 500k 30k'], 'qcow2');
  return image;
}

describe('growing an overlay hides the backing file past the old end', () => {
  const layouts = ['cluster_size=65536', 'extended_l2=on', 'cluster_size=16384,extended_l2=on', 'cluster_size=512', 'compat=0.10'];
  for (const l of layouts) {
    it(l, (t) => {
      if (!requireQemu(t)) return;
      const id = l.replaceAll(/[=,]/g, '-');
      const image = overlay(`ov-${id}`, l, '1M');
      sameSteps(`ov-resize-${id}`, image, [['resize', '--shrink', 'IMG', '520k'], ['resize', 'IMG', '567k']]);
      if (l.includes('extended_l2') || l === 'compat=0.10') {
        sameSteps(`ov-amend-${id}`, image, [['amend', '-o', 'size=520k', 'IMG'], ['amend', '-o', 'size=567k', 'IMG']]);
        sameSteps(`ov-prealloc-${id}`, image, [['resize', '--shrink', 'IMG', '521k'], ['resize', '--preallocation=metadata', 'IMG', '1500k']]);
      }
      // Past a shorter backing file, and (compat=0.10: refused, as qemu cannot zero there) past whole clusters.
      const short = overlay(`ovs-${id}`, l, '600k');
      sameSteps(`ov-short-${id}`, short, [['resize', '--shrink', 'IMG', '520k'], ['resize', 'IMG', '2M']]);
    });
  }

  it('the grown part reads as zeros', (t) => {
    if (!requireQemu(t)) return;
    const image = overlay('ovz', 'cluster_size=65536', '1M');
    copyFileSync(image, at('ovz-v.qcow2'));
    assert.equal(vdisk(['resize', '--shrink', 'ovz-v.qcow2', '520k'], { cwd }).status, 0);
    assert.equal(vdisk(['resize', 'ovz-v.qcow2', '567k'], { cwd }).status, 0);
    qemuIo(at('ovz-v.qcow2'), ['read -P 0 520k 47k', 'read -P 9 0 500k'], 'qcow2');
  });
});

describe('compat=0.10 images with snapshots cannot be resized', () => {
  it('resize and amend size= are refused as qemu-img refuses them', (t) => {
    if (!requireQemu(t)) return;
    const image = at('v2snap.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', image, '1M']);
    qemuIo(image, ['write -P 1 0 64k'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 's1', image]);
    const steps = [['resize', 'IMG', '2M'], ['resize', '--shrink', 'IMG', '512k'], ['resize', 'IMG', '1M'], ['amend', '-o', 'size=2M', 'IMG'], ['amend', '-o', 'size=1M', 'IMG'], ['resize', '--preallocation=full', 'IMG', '3M']];
    for (const [i, step] of steps.entries()) sameSteps(`v2snap-${i}`, image, [step]);
    // Upgraded first, the image can be resized.
    sameSteps('v2snap-up', image, [['amend', '-o', 'compat=1.1,size=2M', 'IMG']]);
  });
});

/** Every bitmap's name, flags and set bits, as vdisk reads them. */
async function bitmapDump(file: string): Promise<string[]> {
  const dev = await BlockDevice.open(file, { format: 'qcow2' });
  try {
    const bm = dev.top.image.bitmaps!;
    const out: string[] = [];
    for (const b of bm.list()) {
      const bits = await bm.read(b.name);
      const set: number[] = [];
      bits.forEach((v, i) => {
        for (let k = 0; k < 8; k++) if (v & (1 << k)) set.push(i * 8 + k);
      });
      out.push(`${b.name} g=${b.granularity} on=${b.enabled} inuse=${b.inUse} bytes=${bits.length} bits=${set.join(',')}`);
    }
    return out;
  } finally {
    await dev.close();
  }
}

/** A 10M image with three bitmaps (one disabled) that recorded writes, made by qemu-img. */
function bitmapImage(name: string): string {
  const image = at(`${name}.qcow2`);
  qemuImgOk(['create', '-q', '-f', 'qcow2', image, '10M']);
  qemuImgOk(['bitmap', '--add', image, 'b0']);
  qemuImgOk(['bitmap', '--add', '-g', '512', image, 'b1']);
  qemuImgOk(['bitmap', '--add', '--disable', image, 'b2']);
  qemuIo(image, ['write 0 64k', 'write 9M 1M'], 'qcow2');
  return image;
}

/** Offset of the bitmap directory (from the header extension). */
function bitmapDirectory(bytes: Buffer): { offset: number; count: number } {
  let p = bytes.readUInt32BE(100);
  while (bytes.readUInt32BE(p) !== 0x23852875) p += 8 + Math.ceil(bytes.readUInt32BE(p + 4) / 8) * 8;
  return { count: bytes.readUInt32BE(p + 8), offset: Number(bytes.readBigUInt64BE(p + 8 + 16)) };
}

/** Host offsets of every bitmap's data clusters. */
function bitmapDataClusters(bytes: Buffer, clusterSize: number): number[] {
  const dir = bitmapDirectory(bytes);
  const out: number[] = [];
  let p = dir.offset;
  for (let i = 0; i < dir.count; i++) {
    const table = Number(bytes.readBigUInt64BE(p));
    const size = bytes.readUInt32BE(p + 8);
    for (let k = 0; k < size; k++) {
      const e = Number(bytes.readBigUInt64BE(table + k * 8) & 0x00fffffffffffe00n);
      if (e) out.push(e);
    }
    const nameSize = bytes.readUInt16BE(p + 18);
    const extra = bytes.readUInt32BE(p + 20);
    p += Math.ceil((24 + extra + nameSize) / 8) * 8;
  }
  assert.ok(out.every((o) => o % clusterSize === 0));
  return out;
}

/** A store that records every read. */
class RecordingStore extends MemoryStore {
  readonly reads: [number, number][] = [];
  override read(offset: number, into: Uint8Array): Promise<number> {
    this.reads.push([offset, into.length]);
    return super.read(offset, into);
  }
}

describe('resizing images with persistent bitmaps', () => {
  const steps: readonly (readonly string[])[][] = [
    [['resize', '--shrink', 'IMG', '9500k']],
    [['resize', 'IMG', '20M']],
    [['amend', '-o', 'size=3M', 'IMG']],
    [['resize', '--shrink', 'IMG', '4100k'], ['resize', 'IMG', '5000k']],
    [['resize', '--preallocation=falloc', 'IMG', '11M']],
  ];
  for (const [i, seq] of steps.entries()) {
    it(seq.map((s) => s.join(' ')).join(', '), async (t) => {
      if (!requireQemu(t)) return;
      const image = bitmapImage(`bm-${i}`);
      sameSteps(`bm-${i}`, image, seq);
      assert.deepEqual(await bitmapDump(at(`bm-${i}-v.qcow2`)), await bitmapDump(at(`bm-${i}-q.qcow2`)));
    });
  }

  it('an inconsistent bitmap refuses the resize, before any bitmap is read', async (t) => {
    if (!requireQemu(t)) return;
    const image = bitmapImage('bmi');
    const bytes = readFileSync(image);
    const dir = bitmapDirectory(bytes);
    bytes.writeUInt32BE(bytes.readUInt32BE(dir.offset + 12) | 1, dir.offset + 12);
    writeFileSync(image, bytes);
    for (const [i, step] of [['resize', 'IMG', '20M'], ['resize', '--shrink', 'IMG', '1M'], ['amend', '-o', 'size=20M', 'IMG']].entries()) sameSteps(`bmi-${i}`, image, [step]);
    const data = bitmapDataClusters(bytes, 65536);
    assert.ok(data.length > 0);
    const store = new RecordingStore('bmi.qcow2', new Uint8Array(bytes));
    await assert.rejects(resize(store, '20M', { format: 'qcow2' }), /Bitmap 'b0' is inconsistent and cannot be used/);
    const touched = store.reads.filter(([off, len]) => data.some((d) => off < d + 65536 && d < off + len));
    assert.deepEqual(touched, [], 'bitmap data read before refusing');
  });
});
