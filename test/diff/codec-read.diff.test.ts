/**
 * Compressed images made by qemu-img read by vdisk as qemu-img reads them:
 * zlib and zstd qcow2 at several cluster sizes (512 B to 2 MiB) with
 * compressed clusters mixed with plain and zero clusters, a backing chain
 * whose layers hold compressed clusters, and streamOptimized VMDK. Runs of
 * compressed units are decoded together on the codec pool; every case is
 * also read with the pool off (VDISK_CODEC_THREADS=0) where it matters.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { compressCluster } from '../../src/formats/qcow2/compressed.js';
import { COMPRESSION_ZSTD } from '../../src/formats/qcow2/layout.js';
import { vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const MiB = 1024 * 1024;

/** A raw image of `mib` MiB: per 256 KiB, text-like (compressible), noise (not), zeros or a hole. */
function mixedRaw(name: string, mib: number, seed: number): void {
  const b = Buffer.alloc(mib * MiB);
  const next = rng(seed);
  const words = ['disk', 'image', 'cluster', 'qemu', 'vdisk', 'block', 'sector', 'zstd', 'zlib', 'grain'];
  for (let at = 0; at < b.length; at += 256 * 1024) {
    const r = next();
    const end = at + 256 * 1024;
    if (r < 0.4) {
      for (let i = at; i < end; ) i += b.write(`${words[Math.floor(next() * words.length)]} `, i, 'latin1');
    } else if (r < 0.65) {
      for (let i = at; i < end; i++) b[i] = Math.floor(next() * 256);
    }
  }
  writeFileSync(join(cwd, name), b);
}

/** vdisk converts `image` to raw; the result must equal qemu-img's conversion byte for byte. */
function sameAsQemu(image: string, env: NodeJS.ProcessEnv = {}): void {
  qemuImgOk(['convert', '-O', 'raw', image, 'q.raw'], { cwd });
  const v = vdisk(['convert', '-O', 'raw', image, 'v.raw'], { cwd, env });
  assert.equal(v.status, 0, v.stderr);
  assert.ok(readFileSync(join(cwd, 'v.raw')).equals(readFileSync(join(cwd, 'q.raw'))), `${image}: vdisk reads what qemu-img reads`);
  const c = qemuImg(['compare', '-F', 'raw', image, 'v.raw'], { cwd });
  assert.equal(c.status, 0, c.stdout + c.stderr);
}

describe('qemu-made compressed qcow2 read by vdisk', () => {
  mixedRaw('src.raw', 12, 7);

  for (const type of ['zlib', 'zstd']) {
    for (const cluster of [512, 65536, 2 * MiB]) {
      it(`${type}, ${cluster} B clusters, compressed clusters among plain and zero ones`, (t) => {
        if (!requireQemu(t)) return;
        const image = `c-${type}-${cluster}.qcow2`;
        qemuImgOk(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${cluster},compression_type=${type}`, 'src.raw', image], { cwd });
        if (hasQemuIo) {
          // Plain data and zero clusters in the middle of compressed runs.
          const r = qemuIo(join(cwd, image), ['write -P 0x5a 3M 1M', 'write -z 6M 2M', 'write -P 0xc3 9000k 100k'], 'qcow2');
          assert.equal(r.status, 0, r.stderr);
        }
        sameAsQemu(image);
      });
    }
  }

  it('the same images read on the calling thread (no workers) and with one worker', (t) => {
    if (!requireQemu(t)) return;
    for (const type of ['zlib', 'zstd']) {
      const image = `c-${type}-65536.qcow2`;
      qemuImgOk(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=${type}`, 'src.raw', image], { cwd });
      sameAsQemu(image, { VDISK_CODEC_THREADS: '0' });
      sameAsQemu(image, { VDISK_CODEC_THREADS: '1' });
    }
  });

  it('a backing chain whose layers hold compressed clusters', (t) => {
    if (!requireQemu(t)) return;
    if (!hasQemuIo) return t.skip('qemu-io not installed');
    qemuImgOk(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'base.qcow2'], { cwd });
    qemuImgOk(['create', '-f', 'qcow2', '-o', 'compression_type=zstd', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2'], { cwd });
    // Compressed writes in the overlay (whole clusters), beside plain ones and holes that show the base.
    let r = qemuIo(join(cwd, 'mid.qcow2'), ['write -c -P 0x11 1M 512k', 'write -c -P 0x22 4160k 64k', 'write -P 0x33 5M 64k'], 'qcow2');
    assert.equal(r.status, 0, r.stderr);
    qemuImgOk(['create', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
    r = qemuIo(join(cwd, 'top.qcow2'), ['write -P 0x44 1100k 8k', 'write -z 4160k 64k'], 'qcow2');
    assert.equal(r.status, 0, r.stderr);
    sameAsQemu('top.qcow2');
  });
});

describe('compressed clusters read together keep qemu-img\'s sparse output', () => {
  it('a compressed cluster of zeros among data ones is left out of the target, as qemu-img scans one cluster per request', (t) => {
    if (!requireQemu(t)) return;
    if (!hasQemuIo) return t.skip('qemu-io not installed');
    // 512 B clusters: a lone zero cluster is a whole request of zeros for qemu-img (a hole), but
    // only 512 B of zeros, under -S's 4 KiB, inside a request that joined its neighbours.
    qemuImgOk(['create', '-f', 'qcow2', '-o', 'cluster_size=512', 'edge.qcow2', '1M'], { cwd });
    const writes = ['write -c -P 0x61 0 4096', 'write -c -P 0 4096 512', 'write -c -P 0x62 4608 3584', 'write -c -P 0 8192 1024', 'write -c -P 0x63 9216 7168'];
    const r = qemuIo(join(cwd, 'edge.qcow2'), writes, 'qcow2');
    assert.equal(r.status, 0, r.stderr);
    qemuImgOk(['convert', '-O', 'qcow2', '-o', 'cluster_size=512', 'edge.qcow2', 'q.qcow2'], { cwd });
    const v = vdisk(['convert', '-O', 'qcow2', '-o', 'cluster_size=512', 'edge.qcow2', 'v.qcow2'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    const map = (f: string): unknown => (JSON.parse(qemuImgOk(['map', '--output=json', f], { cwd })) as { start: number; length: number; data: boolean; zero: boolean }[]).map(({ start, length, data, zero }) => ({ start, length, data, zero }));
    assert.deepEqual(map('v.qcow2'), map('q.qcow2'));
  });
});

describe('qemu-made streamOptimized VMDK read by vdisk', () => {
  it('grains read together decode as qemu-img decodes them', (t) => {
    if (!requireQemu(t)) return;
    mixedRaw('vsrc.raw', 10, 3);
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'vsrc.raw', 's.vmdk'], { cwd });
    sameAsQemu('s.vmdk');
    sameAsQemu('s.vmdk', { VDISK_CODEC_THREADS: '0' });
  });
});

describe('zstd frames are checked as libzstd checks them', () => {
  it('a frame whose content checksum is wrong fails the read, as in qemu-img', async (t) => {
    if (!requireQemu(t)) return;
    // One cluster of noise compressed by qemu-img, its frame replaced by one with a checksum flag and a wrong checksum.
    const data = new Uint8Array(65536);
    const next = rng(5);
    for (let i = 0; i < 20000; i++) data[i] = Math.floor(next() * 256);
    writeFileSync(join(cwd, 'one.raw'), data);
    qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'compression_type=zstd', 'one.raw', 'sum.qcow2'], { cwd });
    const frame = await compressCluster(COMPRESSION_ZSTD, data);
    assert.ok(frame);
    const withSum = new Uint8Array(frame.length + 4);
    withSum.set(frame);
    withSum[4] = (withSum[4] as number) | 4; // Content_Checksum_flag
    withSum.set([0xde, 0xad, 0xbe, 0xef], frame.length);
    const b = readFileSync(join(cwd, 'sum.qcow2'));
    const at = compressedOffset(b);
    b.set(withSum, at);
    writeFileSync(join(cwd, 'sum.qcow2'), b);
    const q = qemuImg(['convert', '-O', 'raw', 'sum.qcow2', 'q.raw'], { cwd });
    assert.equal(q.status, 1, 'qemu-img fails the read');
    const v = vdisk(['convert', '-O', 'raw', 'sum.qcow2', 'v.raw'], { cwd });
    assert.equal(v.status, 1, v.stderr);
    assert.match(v.stderr, /^vdisk: .*decompress/m);
  });
});

/** Host offset of the first compressed cluster of a one-cluster qcow2 (L1[0] → L2[0]). */
function compressedOffset(b: Buffer): number {
  const clusterBits = b.readUInt32BE(20);
  const l1 = Number(b.readBigUInt64BE(40));
  const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  const entry = b.readBigUInt64BE(l2);
  assert.ok(entry & (1n << 62n), 'the cluster is compressed');
  return Number(entry & ((1n << BigInt(62 - (clusterBits - 8))) - 1n));
}
