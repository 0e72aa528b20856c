/**
 * zstd- and bzip2-compressed images named by path (`disk.qcow2.zst`,
 * `disk.raw.bz2`) are inflated privately as gzip'd ones are, so `info`,
 * `compare` and `convert` see the image qemu-img sees in the uncompressed
 * file; inflation is capped, damage fails with a typed error, and
 * `--no-unwrap` reads the file raw as qemu-img does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { encodeUnit, loadZstd } from '../../src/core/codec-kernels.js';

const dir = tmpDir('vdisk-unwrap-zb-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);
const scratch = join(cwd, 'tmp');
const env = { TMPDIR: scratch };

const hasBzip2 = (() => {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('zstd- and bzip2-compressed images by path', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  before(async () => {
    mkdirSync(scratch, { recursive: true });
    qemuImgOk(['create', '-q', '-f', 'qcow2', at('d.qcow2'), '8M']);
    qemuIo(at('d.qcow2'), ['write -P 0x5a 1M 1M', 'write -P 0x11 5M 64k']);
    await loadZstd();
    const image = readFileSync(at('d.qcow2'));
    // Two frames, as pzstd and zstd -T write them.
    const half = Math.floor(image.length / 2);
    writeFileSync(at('d.qcow2.zst'), Buffer.concat([encodeUnit('zstd', image.subarray(0, half)), encodeUnit('zstd', image.subarray(half))]));
    if (hasBzip2) writeFileSync(at('d.qcow2.bz2'), execFileSync('bzip2', ['-c'], { input: image, maxBuffer: 1 << 28 }));
  });

  const names = (): string[] => ['d.qcow2.zst', ...(hasBzip2 ? ['d.qcow2.bz2'] : [])];

  it('are read as the image inside: info, compare and convert agree with qemu-img on the uncompressed file', (t) => {
    if (!requireQemu(t)) return;
    const q = JSON.parse(qemuImgOk(['info', '--output=json', at('d.qcow2')])) as Record<string, unknown>;
    for (const name of names()) {
      const r = vdisk(['info', '--output=json', at(name)], { env });
      assert.equal(r.status, 0, r.stderr);
      const info = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(info['format'], 'qcow2', name);
      assert.equal(info['virtual-size'], q['virtual-size'], name);
      const c = vdisk(['compare', at(name), at('d.qcow2')], { env });
      assert.equal(c.stdout, 'Images are identical.\n', `${name}: ${c.stderr}`);
      const out = at(`${name}.raw`);
      const v = vdisk(['convert', '-O', 'raw', at(name), out], { env });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', out, at('d.qcow2')]).status, 0, name);
    }
    // Nothing is left in the private directory.
    assert.deepEqual(readdirSync(scratch), []);
  });

  it('stop at --max-inflated-size, and fail on damage with ECORRUPT and the file named', (t) => {
    if (!requireQemu(t)) return;
    for (const name of names()) {
      const r = vdisk(['info', '--max-inflated-size=1M', at(name)], { env });
      assert.equal(r.status, 1, name);
      assert.match(r.stderr, /inflates to more than 1048576 bytes/, name);
      const damaged = Buffer.from(readFileSync(at(name)));
      damaged.fill(0x33, 64, 160);
      writeFileSync(at(`bad-${name}`), damaged);
      const d = vdisk(['info', at(`bad-${name}`)], { env });
      assert.equal(d.status, 1, `${name}: ${d.stdout}`);
      assert.match(d.stderr, new RegExp(`bad-${name.replace(/\./g, '\\.')}`), d.stderr);
    }
    assert.deepEqual(readdirSync(scratch), []);
  });

  it('are read raw with --no-unwrap, as qemu-img reads them', (t) => {
    if (!requireQemu(t)) return;
    for (const name of names()) {
      const q = qemuImgOk(['info', at(name)]);
      const r = vdisk(['info', '--no-unwrap', at(name)], { env });
      assert.equal(r.stdout, q, name);
    }
  });
});
