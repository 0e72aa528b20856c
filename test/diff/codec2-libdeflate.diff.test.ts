/**
 * Deflate units (qcow2 zlib clusters, VMDK grains) decode through the
 * system's libdeflate when native/codec.c finds it, and through zlib
 * otherwise (VDISK_NO_LIBDEFLATE=1) or for anything libdeflate does not
 * decode whole. Both ways must read what qemu-img reads and refuse what it
 * refuses: qemu-made images, and the edge cases of the native codec tests
 * (a stream longer or shorter than its unit, truncated, damaged, a grain
 * that inflates past its grain) run again with libdeflate turned off.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const MiB = 1024 * 1024;
const WITHOUT = { VDISK_NO_LIBDEFLATE: '1' };

/** 8 MiB: per 128 KiB, text (compressible), noise (stored plain by qemu-img) or zeros. */
function mixedRaw(name: string, seed: number): void {
  const b = Buffer.alloc(8 * MiB);
  const next = rng(seed);
  for (let at = 0; at < b.length; at += 128 * 1024) {
    const r = next();
    const end = at + 128 * 1024;
    if (r < 0.5) for (let i = at; i < end; ) i += b.write(`grain ${Math.floor(next() * 1000)} cluster `, i, 'latin1');
    else if (r < 0.75) for (let i = at; i < end; i++) b[i] = Math.floor(next() * 256);
  }
  writeFileSync(join(cwd, name), b);
}

describe('deflate units read with and without libdeflate', () => {
  mixedRaw('src.raw', 11);
  const images: [string, string[]][] = [
    ['zlib.qcow2', ['-O', 'qcow2', '-c']],
    ['zlib-4k.qcow2', ['-O', 'qcow2', '-c', '-o', 'cluster_size=4096']],
    ['stream.vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
  ];
  for (const [image, args] of images) {
    it(`${image} converts to what qemu-img converts it to, both ways`, (t) => {
      if (!requireQemu(t)) return;
      qemuImgOk(['convert', '-f', 'raw', ...args, 'src.raw', image], { cwd });
      qemuImgOk(['convert', '-O', 'raw', image, 'q.raw'], { cwd });
      const q = readFileSync(join(cwd, 'q.raw'));
      for (const env of [{}, WITHOUT]) {
        const v = vdisk(['convert', '-O', 'raw', image, 'v.raw'], { cwd, env });
        assert.equal(v.status, 0, v.stderr);
        assert.ok(readFileSync(join(cwd, 'v.raw')).equals(q), `${image} ${JSON.stringify(env)}`);
        assert.equal(qemuImg(['compare', '-F', 'raw', image, 'v.raw'], { cwd }).status, 0);
      }
    });
  }

  it('a damaged zlib cluster fails the same way both ways, as qemu-img fails it', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', '-c', 'src.raw', 'bad.qcow2'], { cwd });
    const b = readFileSync(join(cwd, 'bad.qcow2'));
    // Noise over the middle of the file: compressed clusters lie there, after the metadata.
    const next = rng(3);
    const from = Math.floor(b.length / 2);
    for (let i = from; i < from + 4096; i++) b[i] = Math.floor(next() * 256);
    writeFileSync(join(cwd, 'bad.qcow2'), b);
    const q = qemuImg(['convert', '-O', 'raw', 'bad.qcow2', 'q.raw'], { cwd });
    assert.equal(q.status, 1, 'qemu-img fails the read');
    const answers = [{}, WITHOUT].map((env) => vdisk(['convert', '-O', 'raw', 'bad.qcow2', 'v.raw'], { cwd, env }));
    for (const v of answers) assert.equal(v.status, q.status, v.stderr);
    assert.equal(answers[0]?.stderr, answers[1]?.stderr);
  });

  it('the native codec edge cases hold with libdeflate turned off', () => {
    const test = fileURLToPath(new URL('../unit/core/codec-native.test.js', import.meta.url));
    const r = spawnSync(process.execPath, ['--test', test], { env: { ...process.env, ...WITHOUT }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
