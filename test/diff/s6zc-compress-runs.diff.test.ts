/**
 * convert -c compresses a run of clusters in one request and writes the
 * run's packed clusters at once (BlockDevice.compressUnits and
 * writeCompressedRun). What must hold: the image comes out byte for byte as
 * with one cluster at a time (and as qemu-img's for zstd), far fewer writes
 * reach the file, and power loss at any write leaves no corruption (no L2
 * entry reaches the disk before the compressed bytes it points at), also
 * where a run crosses L2 tables.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { vdisk } from '../helpers/cli.js';
import { PowerLossStore } from '../helpers/fault-store.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** `count` clusters: text (compresses), noise (stored plain, unless `noise` is false), zeros, or zeros with one byte. */
function clusters(seed: number, size: number, count: number, noise = true): Uint8Array {
  const next = rng(seed);
  const b = Buffer.alloc(size * count);
  for (let c = 0; c < count; c++) {
    const r = next();
    const at = c * size;
    if (r < 0.45) for (let i = 0; i < size; ) i += b.write(`cluster ${Math.floor(next() * 100)} `, at + i, 'latin1');
    else if (r < 0.7 && noise) for (let i = 0; i < size; i++) b[at + i] = Math.floor(next() * 256);
    else if (r < 0.85) b[at + Math.floor(next() * size)] = 1;
  }
  return new Uint8Array(b);
}

/** Writes `data` compressed: as runs of `per` clusters (all in flight at once), or one cluster at a time when `per` is 0. */
async function writeAll(store: PowerLossStore, data: Uint8Array, size: number, per: number): Promise<void> {
  const dev = await BlockDevice.open(store, { format: 'qcow2', readOnly: false });
  try {
    const writes: Promise<void>[] = [];
    if (per === 0) {
      for (let at = 0; at < data.length; at += size) writes.push(dev.writeCompressed(at, data.subarray(at, at + size)));
    } else {
      const runs: { at: number; chunk: Uint8Array; packed: Uint8Array; sizes: Int32Array }[] = [];
      for (let at = 0; at < data.length; at += per * size) {
        const chunk = data.subarray(at, at + per * size);
        const run = { at, chunk, packed: new Uint8Array(chunk.length), sizes: new Int32Array(chunk.length / size) };
        await dev.compressUnits(chunk, false, run.packed, run.sizes);
        runs.push(run);
      }
      for (const r of runs) writes.push(dev.writeCompressedRun(r.at, r.chunk, r.packed, r.sizes));
    }
    await Promise.all(writes);
    await dev.flush();
  } finally {
    await dev.close().catch(() => undefined);
  }
}

function image(type: string, cluster: number): Uint8Array {
  const name = `base-${type}-${cluster}.qcow2`;
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `compression_type=${type},cluster_size=${cluster}`, name, '8M'], { cwd });
  return readFileSync(join(cwd, name));
}

describe('compressed runs (convert -c)', () => {
  for (const type of ['zlib', 'zstd']) {
    it(`${type}: runs lay the image out as one cluster at a time, with far fewer writes, across L2 tables`, async (t) => {
      if (!requireQemu(t)) return;
      // 4 KiB clusters: an L2 table maps 2 MiB, so runs of 96 clusters cross tables.
      const cluster = 4096;
      const initial = image(type, cluster);
      const data = clusters(3, cluster, 1500);
      const single = new PowerLossStore(initial);
      await writeAll(single, data, cluster, 0);
      const runs = new PowerLossStore(initial);
      await writeAll(runs, data, cluster, 96);
      assert.ok(Buffer.from(runs.durable()).equals(Buffer.from(single.durable())), 'same bytes as one cluster at a time');
      // Without clusters stored plain (each its own write, between the compressed ones), a run is one write.
      const text = clusters(3, cluster, 1500, false);
      const [textSingle, textRuns] = [new PowerLossStore(initial), new PowerLossStore(initial)];
      await writeAll(textSingle, text, cluster, 0);
      await writeAll(textRuns, text, cluster, 96);
      assert.ok(textRuns.writes * 10 < textSingle.writes, `writes: ${textRuns.writes} in runs, ${textSingle.writes} one at a time`);
      assert.ok(Buffer.from(textRuns.durable()).equals(Buffer.from(textSingle.durable())));
      const file = join(cwd, `runs-${type}.qcow2`);
      writeFileSync(file, runs.durable());
      writeFileSync(join(cwd, 'data.raw'), data);
      assert.equal(qemuImg(['check', file]).status, 0);
      assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', join(cwd, 'data.raw'), file]).status, 0);
    });

    it(`${type}: power loss at any write during compressed runs leaves no corruption`, async (t) => {
      if (!requireQemu(t)) return;
      const cluster = 4096;
      const initial = image(type, cluster);
      const data = clusters(4, cluster, 700);
      const probe = new PowerLossStore(initial);
      await writeAll(probe, data, cluster, 64);
      for (let at = 1; at <= probe.writes; at++) {
        const store = new PowerLossStore(initial, at);
        await assert.rejects(writeAll(store, data, cluster, 64));
        const file = join(cwd, `pl-${type}-${at}.qcow2`);
        writeFileSync(file, store.durable());
        const q = qemuImg(['check', '--output=json', file]);
        assert.ok(q.status === 0 || q.status === 3, `power loss at write ${at}/${probe.writes}: qemu-img check exit ${q.status}\n${q.stdout}${q.stderr}`);
      }
    });
  }

  it('convert -c -o compression_type=zstd writes the bytes qemu-img writes', (t) => {
    if (!requireQemu(t)) return;
    // Zero clusters and runs of every kind, across L2 tables, and a short last cluster.
    writeFileSync(join(cwd, 'src.raw'), clusters(5, 4096, 2500).subarray(0, 2500 * 4096 - 1000));
    const opts = ['-c', '-O', 'qcow2', '-o', 'compression_type=zstd,cluster_size=4096', '-f', 'raw', 'src.raw'];
    const v = vdisk(['convert', ...opts, 'v.qcow2'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    qemuImgOk(['convert', ...opts, 'q.qcow2'], { cwd });
    const ours = readFileSync(join(cwd, 'v.qcow2'));
    const theirs = readFileSync(join(cwd, 'q.qcow2'));
    // qemu-img leaves the file's end on a sector boundary (zeros): the rest is the same.
    assert.ok(ours.equals(theirs.subarray(0, ours.length)), 'same bytes as qemu-img');
    assert.ok(theirs.subarray(ours.length).every((b) => b === 0));
  });

  it('convert -c over a backing file: zero clusters inside runs are written as zeros, as qemu-img writes them', (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(join(cwd, 'src2.raw'), clusters(6, 65536, 64));
    writeFileSync(join(cwd, 'fill.raw'), Buffer.alloc(4 * 1024 * 1024, 7));
    qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', 'fill.raw', 'fill.qcow2'], { cwd });
    const opts = ['-c', '-B', 'fill.qcow2', '-F', 'qcow2', '-f', 'raw', '-O', 'qcow2', 'src2.raw'];
    const v = vdisk(['convert', ...opts, 'v2.qcow2'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    qemuImgOk(['convert', ...opts, 'q2.qcow2'], { cwd });
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', 'src2.raw', 'v2.qcow2'], { cwd }).status, 0);
    assert.equal(qemuImg(['check', 'v2.qcow2'], { cwd }).status, 0);
    const map = (f: string): string => qemuImg(['map', '--output=json', f], { cwd }).stdout;
    assert.match(map('v2.qcow2'), /"zero": true, "data": false/);
    assert.equal(map('v2.qcow2'), map('q2.qcow2'));
  });
});
