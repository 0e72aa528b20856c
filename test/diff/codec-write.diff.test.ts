/**
 * Compressed images written by vdisk (clusters compressed on the codec pool,
 * written in order) pass `qemu-img check` and read as their source in
 * qemu-img: `convert -c` to zlib and zstd qcow2 at several cluster sizes,
 * and streamOptimized VMDK; with workers and on the calling thread.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const MiB = 1024 * 1024;

/** 10 MiB: per 128 KiB, repeated text (compressible), noise (stored plain), zeros or a hole. */
function source(): void {
  const b = Buffer.alloc(10 * MiB);
  const next = rng(21);
  for (let at = 0; at < b.length; at += 128 * 1024) {
    const r = next();
    if (r < 0.4) b.fill(`sector ${at} of a compressible disk\n`, at, at + 128 * 1024);
    else if (r < 0.6) for (let i = at; i < at + 128 * 1024; i++) b[i] = Math.floor(next() * 256);
    else if (r < 0.7) b.fill(0, at, at + 128 * 1024);
  }
  writeFileSync(join(cwd, 'src.raw'), b);
}

function checkAndCompare(image: string): void {
  const c = qemuImg(['check', image], { cwd });
  assert.equal(c.status, 0, c.stdout + c.stderr);
  const m = qemuImg(['compare', '-f', 'raw', 'src.raw', image], { cwd });
  assert.equal(m.status, 0, m.stdout + m.stderr);
}

describe('vdisk-made compressed images pass qemu-img check and compare', () => {
  source();

  for (const type of ['zlib', 'zstd']) {
    for (const cluster of [512, 65536, 2 * MiB]) {
      it(`convert -c -o compression_type=${type},cluster_size=${cluster}`, (t) => {
        if (!requireQemu(t)) return;
        const image = `w-${type}-${cluster}.qcow2`;
        const v = vdisk(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compression_type=${type},cluster_size=${cluster}`, 'src.raw', image], { cwd });
        assert.equal(v.status, 0, v.stderr);
        checkAndCompare(image);
        const info = JSON.parse(qemuImg(['info', '--output=json', image], { cwd }).stdout) as { 'format-specific': { data: { 'compression-type': string } } };
        assert.equal(info['format-specific'].data['compression-type'], type);
      });
    }
  }

  it('convert -c on the calling thread (no workers) and with -W', (t) => {
    if (!requireQemu(t)) return;
    for (const [env, extra] of [[{ VDISK_CODEC_THREADS: '0' }, []], [{}, ['-W']]] as const) {
      const v = vdisk(['convert', '-c', ...extra, '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'w.qcow2'], { cwd, env });
      assert.equal(v.status, 0, v.stderr);
      checkAndCompare('w.qcow2');
    }
  });

  it('convert -c -S 0 compresses every cluster, zeros and holes included, as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', 'src.raw', 'src.qcow2'], { cwd });
    for (const [src, fmt] of [['src.raw', 'raw'], ['src.qcow2', 'qcow2']] as const) {
      for (const [target, opts] of [['S0.qcow2', ['-O', 'qcow2']], ['S0.vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']]] as const) {
        const q = qemuImg(['convert', '-c', '-S', '0', '-f', fmt, ...opts, src, `q-${target}`], { cwd });
        assert.equal(q.status, 0, q.stderr);
        const v = vdisk(['convert', '-c', '-S', '0', '-f', fmt, ...opts, src, `v-${target}`], { cwd });
        assert.equal(v.status, 0, v.stderr);
        const map = (f: string): string => qemuImg(['map', '--output=json', f], { cwd }).stdout;
        assert.equal(map(`v-${target}`), map(`q-${target}`), `${src} → ${target}`);
        const m = qemuImg(['compare', '-f', 'raw', 'src.raw', `v-${target}`], { cwd });
        assert.equal(m.status, 0, m.stdout + m.stderr);
      }
    }
    const c = qemuImg(['check', 'v-S0.qcow2'], { cwd });
    assert.equal(c.status, 0, c.stdout + c.stderr);
  });

  it('streamOptimized vmdk', (t) => {
    if (!requireQemu(t)) return;
    const v = vdisk(['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'src.raw', 's.vmdk'], { cwd });
    assert.equal(v.status, 0, v.stderr);
    const m = qemuImg(['compare', '-f', 'raw', 'src.raw', 's.vmdk'], { cwd });
    assert.equal(m.status, 0, m.stdout + m.stderr);
    // and read back by vdisk itself, grains decoded together
    const back = vdisk(['compare', '-f', 'raw', 'src.raw', 's.vmdk'], { cwd });
    assert.equal(back.status, 0, back.stdout + back.stderr);
  });
});
