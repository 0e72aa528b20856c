/**
 * convert --preset and validate against qemu-img: every plain preset's
 * output passes its own validator, qemu-img reads it as the preset's
 * format and finds it equal to the source; Azure's VHD is fixed with a
 * virtual size rounded up to a MiB; bad images are rejected by rule id.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { convert } from '../../src/jobs/convert.js';
import { validate } from '../../src/jobs/validate.js';
import { vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-presets-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (f: string): string => `${cwd}/${f}`;
const M = 1024 * 1024;

/** A qcow2 source of 3,000,000 bytes (not a whole MiB) with scattered data. */
function source(): string {
  const next = rng(20);
  const raw = new Uint8Array(3_000_000);
  for (let i = 0; i < 40; i++) {
    const off = Math.floor(next() * (raw.length - 4096));
    for (let j = 0; j < 4096; j++) raw[off + j] = Math.floor(next() * 256);
  }
  writeFileSync(at('src.raw'), raw);
  qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', 'src.raw', 'src.qcow2'], { cwd });
  return 'src.qcow2';
}

function infoJson(file: string, format?: string): Record<string, unknown> {
  return JSON.parse(qemuImgOk(['info', '--output=json', ...(format ? ['-f', format] : []), file], { cwd })) as Record<string, unknown>;
}

function failedIds(r: { rules: readonly { id: string; ok: boolean }[] }): string[] {
  return r.rules.filter((x) => !x.ok).map((x) => x.id);
}

describe('convert --preset (plain presets)', () => {
  const PLAIN: [string, string, string | undefined][] = [
    ['azure', 'vpc', undefined],
    ['aws', 'vmdk', 'streamOptimized'],
    ['esxi', 'vmdk', 'streamOptimized'],
    ['openstack', 'qcow2', undefined],
    ['kubevirt', 'qcow2', undefined],
  ];
  for (const [preset, format, createType] of PLAIN) {
    it(`${preset}: passes its validator, qemu-img reads it as ${format} equal to the source`, (t) => {
      if (!requireQemu(t)) return;
      const src = source();
      const out = `out-${preset}`;
      const r = vdisk(['convert', '--preset', preset, src, out], { cwd });
      assert.equal(r.status, 0, r.stderr);
      const v = vdisk(['validate', '--preset', preset, '--output=json', out], { cwd });
      assert.equal(v.status, 0, v.stdout + v.stderr);
      assert.equal((JSON.parse(v.stdout) as { accepted: boolean }).accepted, true);
      const info = infoJson(out, format);
      assert.equal(info['format'], format);
      if (createType) assert.equal(((info['format-specific'] as { data: { 'create-type': string } }).data)['create-type'], createType);
      const cmp = qemuImg(['compare', '-f', 'qcow2', '-F', format, src, out], { cwd });
      assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
      if (format === 'qcow2') assert.equal(qemuImg(['check', out], { cwd }).status, 0);
    });
  }

  it('azure: a fixed VHD whose virtual size is rounded up to a whole MiB (qemu-img info -f vpc)', (t) => {
    if (!requireQemu(t)) return;
    source();
    assert.equal(vdisk(['convert', '--preset', 'azure', 'src.qcow2', 'az.vhd'], { cwd }).status, 0);
    // A fixed VHD probes as raw: its footer is the file's last 512 bytes.
    assert.equal(infoJson('az.vhd')['format'], 'raw');
    assert.equal(infoJson('az.vhd', 'vpc')['virtual-size'], 3 * M);
    assert.equal(infoJson('az.vhd')['virtual-size'], 3 * M + 512);
  });

  it('refuses options the preset sets, and a source past the cloud limit, before writing', async (t) => {
    if (!requireQemu(t)) return;
    source();
    const r = vdisk(['convert', '--preset', 'azure', '-O', 'qcow2', 'src.qcow2', 'conflict.vhd'], { cwd });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^vdisk: The azure preset sets the target itself: targetFormat \(-O\) cannot be given with it\n$/);
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'huge.qcow2', '5T'], { cwd });
    await assert.rejects(convert(at('huge.qcow2'), at('huge.vhd'), { preset: 'azure' }), /Azure accepts at most 4 TiB \(4398046511104 bytes\): the source's virtual size is 5 TiB/);
    assert.equal(qemuImg(['info', 'huge.vhd'], { cwd }).status, 1);
    const unknown = vdisk(['convert', '--preset', 'nope', 'src.qcow2', 'x'], { cwd });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /Unknown preset 'nope'/);
  });
});

describe('validate rejects bad images with the rule ids', () => {
  it('azure: a dynamic VHD, a size not a whole MiB', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vpc', 'dyn.vhd', '10M'], { cwd });
    assert.deepEqual(failedIds(await validate(at('dyn.vhd'), 'azure')), ['azure.fixed', 'azure.size-mib']);
    qemuImgOk(['create', '-q', '-f', 'vpc', '-o', 'subformat=fixed,force_size=on', 'fixed.vhd', '10M'], { cwd });
    assert.deepEqual(failedIds(await validate(at('fixed.vhd'), 'azure')), []);
    qemuImgOk(['create', '-q', '-f', 'vpc', '-o', 'subformat=fixed', 'chs.vhd', '10M'], { cwd });
    assert.deepEqual(failedIds(await validate(at('chs.vhd'), 'azure')), ['azure.size-mib']);
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '10M'], { cwd });
    assert.ok(failedIds(await validate(at('q.qcow2'), 'azure')).includes('azure.format'));
  });

  it('openstack and kubevirt: a qcow2 with a backing file; exit codes 2 and 1', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'base.qcow2', '10M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'over.qcow2'], { cwd });
    assert.deepEqual(failedIds(await validate(at('over.qcow2'), 'openstack')), ['openstack.no-external']);
    assert.deepEqual(failedIds(await validate(at('over.qcow2'), 'kubevirt')), ['kubevirt.no-backing']);
    const r = vdisk(['validate', '--preset', 'openstack', 'over.qcow2'], { cwd });
    assert.equal(r.status, 2);
    assert.match(r.stdout, /^FAIL openstack\.no-external: .*'base\.qcow2'/m);
    assert.match(r.stdout, /^verdict: rejected$/m);
    assert.equal(vdisk(['validate', '--preset', 'openstack', 'base.qcow2'], { cwd }).status, 0);
    const missing = vdisk(['validate', '--preset', 'openstack', 'missing.qcow2'], { cwd });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^vdisk: /);
  });

  it('aws/esxi: a monolithicSparse VMDK is not stream-optimized; gce: a bare raw file is not a tarball', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'vmdk', 'sparse.vmdk', '10M'], { cwd });
    assert.deepEqual(failedIds(await validate(at('sparse.vmdk'), 'aws')), ['aws.stream-optimized']);
    assert.deepEqual(failedIds(await validate(at('sparse.vmdk'), 'esxi')), ['esxi.stream-optimized']);
    qemuImgOk(['create', '-q', '-f', 'raw', 'bare.raw', '10M'], { cwd });
    assert.deepEqual(failedIds(await validate(at('bare.raw'), 'gce')), ['gce.gzip', 'gce.tar', 'gce.tar-format', 'gce.disk-raw', 'gce.size-gib']);
  });
});
