/**
 * Compressed qcow2 clusters from an untrusted image, decoded within one
 * cluster as QEMU decodes them. zstd: a frame without a content
 * size may expand without limit (4 bytes of RLE block per 128 KiB), so it
 * must be decoded against the cluster bound, not whole and then measured.
 * qemu-img decodes it with a streaming decoder into one cluster and fails
 * the read (8 MB RSS); vdisk must fail too, within bounded memory, and
 * still read a well-formed unsized frame exactly as qemu-img does. zlib:
 * QEMU keeps the first cluster of a longer stream (vdisk used to fail).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { compressCluster, decompressCluster } from '../../src/formats/qcow2/compressed.js';
import { COMPRESSION_ZSTD } from '../../src/formats/qcow2/layout.js';
import { hasTime, RSS_LIMIT_KIB, vdiskPeak } from '../helpers/bounds-rss.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** 64 KiB whose first 24 KiB are noise, so the compressed cluster spans ~24 KiB. */
function noisyCluster(): Uint8Array {
  const out = new Uint8Array(65536);
  let x = 0x12345678;
  for (let i = 0; i < 24576; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A zstd frame with no content size (128 KiB window) of `blocks` RLE blocks of `blockSize` bytes of `byte`. */
function unsizedRleFrame(blocks: number, blockSize: number, byte: number): Uint8Array {
  const out = new Uint8Array(6 + 4 * blocks);
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]);
  for (let i = 0; i < blocks; i++) {
    const h = (blockSize << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0);
    out.set([h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff, byte], 6 + 4 * i);
  }
  return out;
}

/** A one-cluster compressed qcow2 made by qemu-img; returns the compressed cluster's host offset and room. */
function compressedImage(name: string, type = 'zstd'): { offset: number; room: number } {
  writeFileSync(join(cwd, 'src.raw'), noisyCluster());
  qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', `compression_type=${type}`, 'src.raw', name], { cwd });
  const b = readFileSync(join(cwd, name));
  const clusterBits = b.readUInt32BE(20);
  const l1 = Number(b.readBigUInt64BE(40));
  const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  const entry = b.readBigUInt64BE(l2);
  assert.ok(entry & (1n << 62n), 'the cluster is compressed');
  const x = BigInt(62 - (clusterBits - 8));
  const offset = Number(entry & ((1n << x) - 1n));
  const sectors = Number((entry >> x) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
  return { offset, room: sectors * 512 - (offset & 511) };
}

/** Writes `frame` over the compressed cluster of a fresh image `name`. */
function withFrame(name: string, frame: Uint8Array, type = 'zstd'): void {
  const { offset, room } = compressedImage(name, type);
  assert.ok(frame.length <= room, `frame of ${frame.length} fits the ${room} bytes`);
  const b = readFileSync(join(cwd, name));
  b.set(frame, offset);
  writeFileSync(join(cwd, name), b);
}

describe('qcow2 zstd clusters are decoded within the cluster bound', () => {
  it('an unsized frame expanding to ~780 MiB fails the read as qemu-img does, in bounded memory', (t) => {
    if (!requireQemu(t)) return;
    if (!hasTime) return t.skip('GNU time not installed');
    const frame = unsizedRleFrame(6000, 131072, 0);
    withFrame('bomb.qcow2', frame);
    const q = qemuImg(['convert', '-O', 'raw', 'bomb.qcow2', 'q.raw'], { cwd });
    assert.equal(q.status, 1, q.stderr);
    const v = vdiskPeak(['convert', '-O', 'raw', 'bomb.qcow2', 'v.raw'], { cwd });
    assert.equal(v.status, 1, v.stderr);
    assert.match(v.stderr, /^vdisk: /);
    assert.ok(v.peakKiB < RSS_LIMIT_KIB, `peak RSS ${v.peakKiB} KiB`);
  });

  it('an unsized frame of exactly one cluster reads as qemu-img reads it', (t) => {
    if (!requireQemu(t)) return;
    withFrame('rle.qcow2', unsizedRleFrame(2, 32768, 0xab));
    qemuImgOk(['convert', '-O', 'raw', 'rle.qcow2', 'q.raw'], { cwd });
    const v = vdisk(['convert', '-O', 'raw', 'rle.qcow2', 'v.raw'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    const q = readFileSync(join(cwd, 'q.raw'));
    assert.ok(q.every((b) => b === 0xab), 'qemu-img reads the RLE bytes');
    assert.deepEqual(readFileSync(join(cwd, 'v.raw')), q);
  });

  it('an unsized frame one block past the cluster fails as in qemu-img', (t) => {
    if (!requireQemu(t)) return;
    withFrame('over.qcow2', unsizedRleFrame(3, 32768, 0xab));
    assert.equal(qemuImg(['convert', '-O', 'raw', 'over.qcow2', 'q.raw'], { cwd }).status, 1);
    assert.equal(vdisk(['convert', '-O', 'raw', 'over.qcow2', 'v.raw'], { cwd }).status, 1);
  });

  it('a sized frame is decoded without turning the cluster buffer into a string', async () => {
    // fzstd compares a caller's output buffer with `== 1`, which joins every
    // byte of it into a string (13-18x slower reads); vdisk must not hand it one.
    const data = noisyCluster();
    const frame = await compressCluster(COMPRESSION_ZSTD, data);
    assert.ok(frame);
    const proto = Object.getPrototypeOf(Uint8Array.prototype) as { join: (...a: unknown[]) => string };
    const join0 = proto.join;
    let joins = 0;
    proto.join = function (this: unknown, ...a: unknown[]) {
      joins++;
      return join0.apply(this, a);
    };
    const out = new Uint8Array(65536);
    try {
      await decompressCluster(COMPRESSION_ZSTD, frame, out, 0);
    } finally {
      proto.join = join0;
    }
    assert.equal(joins, 0);
    assert.deepEqual(out, data);
  });
});

describe('qcow2 zlib clusters are decoded within the cluster bound', () => {
  it('a stream longer than a cluster reads as its first cluster, as qemu-img reads it', (t) => {
    if (!requireQemu(t)) return;
    // QEMU inflates into one cluster and accepts a full output with input left over
    const data = Buffer.concat([Buffer.alloc(65536, 0x41), Buffer.alloc(65536, 0x42)]);
    withFrame('long.qcow2', deflateRawSync(data, { windowBits: 12 }), 'zlib');
    qemuImgOk(['convert', '-O', 'raw', 'long.qcow2', 'q.raw'], { cwd });
    const v = vdisk(['convert', '-O', 'raw', 'long.qcow2', 'v.raw'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    const q = readFileSync(join(cwd, 'q.raw'));
    assert.ok(q.every((b) => b === 0x41));
    assert.deepEqual(readFileSync(join(cwd, 'v.raw')), q);
  });

  it('a stream shorter than a cluster fails as in qemu-img', (t) => {
    if (!requireQemu(t)) return;
    withFrame('short.qcow2', deflateRawSync(Buffer.alloc(4096, 0x41), { windowBits: 12 }), 'zlib');
    assert.equal(qemuImg(['convert', '-O', 'raw', 'short.qcow2', 'q.raw'], { cwd }).status, 1);
    assert.equal(vdisk(['convert', '-O', 'raw', 'short.qcow2', 'v.raw'], { cwd }).status, 1);
  });
});
