/**
 * Crash safety of qcow2 writes, proven with check: (1) power loss at a
 * seeded write number (a fault-injecting store drops every unflushed
 * write), (2) SIGKILL of a writing child at seeded moments. Afterwards
 * qemu-img check finds no corruption (leaks are allowed, as for qemu) and
 * `vdisk check -r all` brings the image back to clean.
 * VDISK_CRASH_POINTS=N runs N seeded points of each kind (default 4).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { BlockDevice } from '../../src/block/device.js';
import { vdisk } from '../helpers/cli.js';
import { crashWorkload } from '../helpers/crash-workload.js';
import { PowerLossStore } from '../helpers/fault-store.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const POINTS = Number(process.env['VDISK_CRASH_POINTS'] ?? 4);
const CHILD = fileURLToPath(new URL('../helpers/crash-child.js', import.meta.url));

function baseImage(name: string, opts = 'cluster_size=65536'): string {
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', opts, name, '32M'], { cwd });
  return join(cwd, name);
}

function checkAfterCrash(file: string, what: string): void {
  const q = qemuImg(['check', '--output=json', file]);
  assert.ok(q.status === 0 || q.status === 3, `${what}: qemu-img check exit ${q.status}\n${q.stdout}${q.stderr}`);
  const v = vdisk(['check', '--output=json', file]);
  assert.equal(v.status, q.status, `${what}: vdisk check agrees with qemu-img\n${v.stdout}${v.stderr}`);
  const r = vdisk(['check', '-r', 'all', file]);
  assert.equal(r.status, 0, `${what}: vdisk check -r all\n${r.stdout}${r.stderr}`);
  const q2 = qemuImg(['check', file]);
  assert.equal(q2.status, 0, `${what}: clean after repair\n${q2.stdout}${q2.stderr}`);
}

async function run(store: PowerLossStore, seed: number): Promise<void> {
  const dev = await BlockDevice.open(store, { format: 'qcow2', readOnly: false });
  try {
    await crashWorkload(dev, seed, 120);
    await dev.flush();
  } finally {
    await dev.close().catch(() => undefined);
  }
}

describe('qcow2 crash safety (checked by qemu-img and vdisk check)', () => {
  it('power loss at seeded write numbers leaves no corruption', async (t) => {
    if (!requireQemu(t)) return;
    for (const [i, opts] of [[0, 'cluster_size=65536'], [1, 'cluster_size=65536,lazy_refcounts=on']] as const) {
      const initial = readFileSync(baseImage(`pl-base${i}.qcow2`, opts));
      const probe = new PowerLossStore(initial);
      await run(probe, 7 + i);
      const total = probe.writes;
      const pick = rng(1234 + i);
      for (let p = 0; p < POINTS; p++) {
        const at = 1 + Math.floor(pick() * total);
        const store = new PowerLossStore(initial, at);
        await assert.rejects(run(store, 7 + i));
        const file = join(cwd, `pl-${i}-${at}.qcow2`);
        writeFileSync(file, store.durable());
        checkAfterCrash(file, `power loss at write ${at}/${total} (${opts})`);
      }
    }
  });

  it('SIGKILL of a writing process at seeded moments leaves no corruption', async (t) => {
    if (!requireQemu(t)) return;
    const pick = rng(99);
    for (let p = 0; p < POINTS; p++) {
      const file = baseImage(`kill-${p}.qcow2`, p % 2 ? 'cluster_size=65536,lazy_refcounts=on' : 'cluster_size=65536');
      const delay = 30 + Math.floor(pick() * 400);
      const child = spawn(process.execPath, [CHILD, file, String(p + 1)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => setTimeout(resolve, delay));
        child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${err}`)));
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // a lazy-refcounts image killed mid-write keeps its dirty bit: check repairs it as qemu does
      checkAfterCrash(file, `SIGKILL after ${delay} ms`);
    }
  });
});
