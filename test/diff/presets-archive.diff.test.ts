/**
 * The tar-wrapped presets: GCE's .tar.gz extracts with GNU tar to a
 * `disk.raw` holding the source then zeros up to a whole GiB; the OVA
 * extracts to an OVF descriptor (first), a stream-optimized VMDK that
 * qemu-img finds equal to the source, and a manifest sha256sum accepts.
 * Both also stream to stdout (`-`), the OVA with the same bytes' length.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { validate } from '../../src/jobs/validate.js';
import { tarHeader, parseTarHeader } from '../../src/core/tar.js';
import { VDISK_BIN, vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-presets-archive-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (f: string): string => `${cwd}/${f}`;
const GiB = 1024 * 1024 * 1024;

function source(): Uint8Array {
  const next = rng(7);
  const raw = new Uint8Array(2_000_000);
  for (let i = 0; i < 30; i++) {
    const off = Math.floor(next() * (raw.length - 8192));
    for (let j = 0; j < 8192; j++) raw[off + j] = Math.floor(next() * 256);
  }
  writeFileSync(at('src.raw'), raw);
  qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', 'src.raw', 'src.qcow2'], { cwd });
  return raw;
}

/** disk.raw of a GCE tarball, read through GNU tar: the source's bytes, then only zeros, to `size`. */
function checkDiskRaw(tarball: string, raw: Uint8Array): void {
  const list = spawnSync('tar', ['-tzvf', tarball], { cwd, encoding: 'utf8' });
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout.trim(), /^-\S+ \S+ +1073741824 .* disk\.raw$/);
  const out = spawnSync('tar', ['-xzOf', tarball, 'disk.raw'], { cwd, maxBuffer: 2 * GiB });
  assert.equal(out.status, 0);
  const disk = out.stdout as Buffer;
  assert.equal(disk.length, GiB);
  assert.ok(Buffer.from(raw).equals(disk.subarray(0, raw.length)), 'disk.raw starts with the source');
  assert.ok(disk.subarray(raw.length).every((b) => b === 0), 'the rest of disk.raw is zeros');
}

describe('tar headers', () => {
  it('round-trip, ustar and oldgnu, sizes past the octal field in base-256', () => {
    for (const format of ['ustar', 'oldgnu'] as const) {
      for (const size of [0, 511, 8 ** 11 - 1, 8 ** 11, 3 * 2 ** 40]) {
        const h = parseTarHeader(tarHeader('disk.raw', size, format));
        assert.deepEqual(h, { name: 'disk.raw', size, type: '0', format });
      }
    }
    const bad = tarHeader('x', 1, 'ustar');
    bad[0] = 0x79;
    assert.equal(parseTarHeader(bad), undefined);
  });

  it('GNU tar reads a header of 9 GiB written in base-256', (t) => {
    const h = tarHeader('big.raw', 9 * GiB, 'oldgnu');
    writeFileSync(at('big.tar'), h);
    const r = spawnSync('tar', ['-tvf', 'big.tar'], { cwd, encoding: 'utf8' });
    if (r.error) return t.skip('no GNU tar');
    assert.match(r.stdout, / 9663676416 .* big\.raw/);
  });
});

describe('convert --preset gce and ova', () => {
  it('gce: a .tar.gz (oldgnu) whose disk.raw is the source padded to a whole GiB, accepted by validate', async (t) => {
    if (!requireQemu(t)) return;
    const raw = source();
    const r = vdisk(['convert', '--preset', 'gce', 'src.qcow2', 'disk.tar.gz'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    checkDiskRaw('disk.tar.gz', raw);
    const v = await validate(at('disk.tar.gz'), 'gce');
    assert.equal(v.accepted, true, JSON.stringify(v.rules.filter((x) => !x.ok)));
    // validate on the OVA preset names what is wrong with it
    assert.ok((await validate(at('disk.tar.gz'), 'ova')).rules.some((x) => x.id === 'ova.uncompressed' && !x.ok));
  });

  it('ova: an .ovf first, a stream-optimized VMDK equal to the source, a manifest sha256sum accepts', async (t) => {
    if (!requireQemu(t)) return;
    source();
    const r = vdisk(['convert', '--preset', 'ova', 'src.qcow2', 'app.ova'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    const list = spawnSync('tar', ['-tf', 'app.ova'], { cwd, encoding: 'utf8' });
    assert.deepEqual(list.stdout.trim().split('\n'), ['app.ovf', 'app-disk1.vmdk', 'app.mf']);
    mkdirSync(at('ova'));
    assert.equal(spawnSync('tar', ['-xf', '../app.ova'], { cwd: at('ova') }).status, 0);
    const info = JSON.parse(qemuImgOk(['info', '--output=json', 'ova/app-disk1.vmdk'], { cwd })) as { format: string; 'format-specific': { data: { 'create-type': string } } };
    assert.equal(info.format, 'vmdk');
    assert.equal(info['format-specific'].data['create-type'], 'streamOptimized');
    assert.equal(qemuImg(['compare', '-f', 'qcow2', '-F', 'vmdk', 'src.qcow2', 'ova/app-disk1.vmdk'], { cwd }).status, 0);
    assert.equal(spawnSync('sha256sum', ['-c', 'app.mf'], { cwd: at('ova') }).status, 0);
    const ovf = readFileSync(at('ova/app.ovf'), 'utf8');
    assert.match(ovf, /ovf:href="app-disk1\.vmdk"/);
    assert.match(ovf, /ovf:capacity="2000384"/);
    assert.match(ovf, /#streamOptimized/);
    assert.equal((await validate(at('app.ova'), 'ova')).accepted, true);
    // A bare VMDK is no OVA.
    const bare = await validate(at('ova/app-disk1.vmdk'), 'ova');
    assert.deepEqual(bare.rules.filter((x) => !x.ok).map((x) => x.id), ['ova.tar', 'ova.ustar', 'ova.ovf-first', 'ova.references', 'ova.manifest']);
  });

  it('ova and gce to stdout (-): GNU tar reads them', (t) => {
    if (!requireQemu(t)) return;
    source();
    const ova = spawnSync(process.execPath, [VDISK_BIN, 'convert', '--preset', 'ova', 'src.qcow2', '-'], { cwd, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(ova.status, 0, String(ova.stderr));
    writeFileSync(at('piped.ova'), ova.stdout);
    const list = spawnSync('tar', ['-tf', 'piped.ova'], { cwd, encoding: 'utf8' });
    assert.deepEqual(list.stdout.trim().split('\n'), ['disk.ovf', 'disk-disk1.vmdk', 'disk.mf']);
    const gce = spawnSync(process.execPath, [VDISK_BIN, 'convert', '--preset', 'gce', 'src.qcow2', '-'], { cwd, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(gce.status, 0, String(gce.stderr));
    writeFileSync(at('piped.tar.gz'), gce.stdout);
    // The bytes were checked on the file output above; here GNU tar lists the piped archive.
    const gceList = spawnSync('tar', ['-tzvf', 'piped.tar.gz'], { cwd, encoding: 'utf8' });
    assert.match(gceList.stdout.trim(), /^-\S+ \S+ +1073741824 .* disk\.raw$/);
    assert.ok(statSync(at('piped.tar.gz')).size < 4 * 1024 * 1024);
  });
});
