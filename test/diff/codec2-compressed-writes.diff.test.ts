/**
 * qcow2 compressed clusters are written in two steps (beginWriteCompressed):
 * a cluster is placed and mapped under the device's write lock, its bytes
 * land while the next one is placed. What must hold: the image is laid out
 * exactly as with one cluster at a time (placement stays in order), and
 * power loss at any write leaves no corruption (no L2 entry reaches the disk
 * before the compressed bytes it points at).
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
const CLUSTER = 65536;

/** One cluster: text (compresses), noise (stored plain), or zeros with a few bytes. */
function unit(next: () => number): Uint8Array {
  const b = Buffer.alloc(CLUSTER);
  const r = next();
  if (r < 0.5) for (let i = 0; i < CLUSTER; ) i += b.write(`cluster ${Math.floor(next() * 100)} `, i, 'latin1');
  else if (r < 0.8) for (let i = 0; i < CLUSTER; i++) b[i] = Math.floor(next() * 256);
  else b[Math.floor(next() * CLUSTER)] = 1;
  return new Uint8Array(b);
}

/** Writes `count` compressed clusters, all at once (the device orders their placement), then flushes. */
async function writeAll(store: PowerLossStore, seed: number, count: number): Promise<void> {
  const dev = await BlockDevice.open(store, { format: 'qcow2', readOnly: false });
  try {
    const next = rng(seed);
    const units = Array.from({ length: count }, () => unit(next));
    await Promise.all(units.map((u, i) => dev.writeCompressed(i * CLUSTER, u)));
    await dev.flush();
  } finally {
    await dev.close().catch(() => undefined);
  }
}

describe('qcow2 compressed writes in two steps', () => {
  for (const type of ['zlib', 'zstd']) {
    it(`${type}: power loss at seeded writes during parallel compressed writes leaves no corruption`, async (t) => {
      if (!requireQemu(t)) return;
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `compression_type=${type}`, `base-${type}.qcow2`, '8M'], { cwd });
      const initial = readFileSync(join(cwd, `base-${type}.qcow2`));
      const probe = new PowerLossStore(initial);
      await writeAll(probe, 5, 96);
      const whole = join(cwd, `whole-${type}.qcow2`);
      writeFileSync(whole, probe.durable());
      assert.equal(qemuImg(['check', whole]).status, 0);
      const pick = rng(77);
      for (let p = 0; p < 6; p++) {
        const at = 1 + Math.floor(pick() * probe.writes);
        const store = new PowerLossStore(initial, at);
        await assert.rejects(writeAll(store, 5, 96));
        const file = join(cwd, `pl-${type}-${at}.qcow2`);
        writeFileSync(file, store.durable());
        const q = qemuImg(['check', '--output=json', file]);
        assert.ok(q.status === 0 || q.status === 3, `power loss at write ${at}/${probe.writes}: qemu-img check exit ${q.status}\n${q.stdout}${q.stderr}`);
      }
    });
  }

  it('convert -c lays the image out as with one request at a time', (t) => {
    if (!requireQemu(t)) return;
    const next = rng(9);
    writeFileSync(join(cwd, 'src.raw'), Buffer.concat(Array.from({ length: 160 }, () => unit(next))));
    for (const type of ['zlib', 'zstd']) {
      const outs = [['m1.qcow2', ['-m', '1']], ['m16.qcow2', ['-m', '16']]] as const;
      for (const [name, extra] of outs) {
        const v = vdisk(['convert', '-c', '-O', 'qcow2', '-o', `compression_type=${type}`, ...extra, '-f', 'raw', 'src.raw', name], { cwd });
        assert.equal(v.status, 0, v.stderr);
        assert.equal(qemuImg(['check', join(cwd, name)]).status, 0);
        assert.equal(qemuImg(['compare', '-f', 'raw', 'src.raw', name], { cwd }).status, 0);
      }
      assert.ok(readFileSync(join(cwd, 'm1.qcow2')).equals(readFileSync(join(cwd, 'm16.qcow2'))), `${type}: same bytes with -m 1 and -m 16`);
    }
  });
});
