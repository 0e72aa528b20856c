/**
 * map and measure of formats whose data sits 1:1 in a host file, against
 * qemu-img 7.2: qemu asks the host file for holes inside
 * flat vmdk extents, static vdi and fixed vpc images (BDRV_BLOCK_RECURSE),
 * reports vhdx as all data (its driver has no block status), and reports
 * unallocated blocks of images that cannot have a backing file (dynamic vpc
 * and vdi) as zeros the image answers for. `map --output=json`, human
 * `map` (extent file names as qemu combines them) and `measure` must be
 * byte-identical; `measure -l` (persistent bitmaps included) and
 * `convert -l` cover the image's current size, as qemu's load_tmp does.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-validate-map-');
after(() => dir.cleanup());
const cwd = dir.path;

const WRITES = ['write -P 1 1M 64k', 'write -P 2 3M 4k', 'write -z 5M 2M', 'write -P 3 9M 512', 'write -P 4 15M 1M'];

/** Images made by qemu-img and written by qemu-io, with the format to name. */
const IMAGES: readonly (readonly [string, string, readonly string[]])[] = [
  ['flat.vmdk', 'vmdk', ['-o', 'subformat=monolithicFlat']],
  ['twof.vmdk', 'vmdk', ['-o', 'subformat=twoGbMaxExtentFlat']],
  ['twos.vmdk', 'vmdk', ['-o', 'subformat=twoGbMaxExtentSparse']],
  ['sparse.vmdk', 'vmdk', []],
  ['fixed.vpc', 'vpc', ['-o', 'subformat=fixed']],
  ['dyn.vpc', 'vpc', []],
  ['fixed.vhdx', 'vhdx', ['-o', 'subformat=fixed']],
  ['dyn.vhdx', 'vhdx', []],
  ['nz.vhdx', 'vhdx', ['-o', 'block_state_zero=off']],
  ['static.vdi', 'vdi', ['-o', 'static=on']],
  ['dyn.vdi', 'vdi', []],
];

function same(args: readonly string[]): void {
  const ours = vdisk(args, { cwd });
  const theirs = qemuImg(args, { cwd });
  assert.equal(ours.stdout, theirs.stdout, args.join(' '));
  assert.equal(ours.stderr, theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), args.join(' '));
  assert.equal(ours.status, theirs.status, args.join(' '));
}

describe('map and measure of raw-like layouts equal qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    for (const [name, format, opts] of IMAGES) {
      qemuImgOk(['create', '-q', '-f', format, ...opts, name, '20M'], { cwd });
      qemuIo(`${cwd}/${name}`, WRITES, format);
    }
    // Several 2 GiB flat extents, sparse on the host, data on both sides of a boundary.
    qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', 'big.vmdk', '5G'], { cwd });
    qemuIo(`${cwd}/big.vmdk`, ['write -P 1 1M 64k', 'write -P 2 2047M 2M', 'write -z 3G 1M'], 'vmdk');
    // The same images opened through a relative directory: qemu names extents relative to it.
    mkdirSync(`${cwd}/sub`);
    qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', 'sub/s.vmdk', '20M'], { cwd });
    qemuIo(`${cwd}/sub/s.vmdk`, WRITES, 'vmdk');
    qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'sub/f.vmdk', '20M'], { cwd });
    qemuIo(`${cwd}/sub/f.vmdk`, WRITES, 'vmdk');
  });

  for (const [name, format] of [...IMAGES.map(([n, f]) => [n, f] as const), ['big.vmdk', 'vmdk'] as const]) {
    it(`${name}: map (json and human) and measure`, (t) => {
      if (!requireQemu(t)) return;
      same(['map', '--output=json', '-f', format, name]);
      same(['map', '-f', format, name]);
      same(['map', '--output=json', '--start-offset=3M', '--max-length=7M', '-f', format, name]);
      same(['measure', '--output=json', '-O', 'qcow2', '-f', format, name]);
      same(['measure', '-O', 'raw', '-f', format, name]);
    });
  }

  it('measure -l and convert -l cover the current size, as qemu-img (snapshot taken before a resize, two bitmaps, 2 MiB clusters)', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', 'bm.qcow2', '16448k'], { cwd });
    qemuIo(`${cwd}/bm.qcow2`, ['write -P 1 0 1M', 'write -P 2 16M 64k'], 'qcow2');
    qemuImgOk(['bitmap', '--add', 'bm.qcow2', 'b1'], { cwd });
    qemuImgOk(['bitmap', '--add', '-g', '512', 'bm.qcow2', 'b2'], { cwd });
    qemuImgOk(['snapshot', '-c', 's1', 'bm.qcow2'], { cwd });
    for (const size of ['18M', '2T']) {
      qemuImgOk(['resize', 'bm.qcow2', size], { cwd });
      same(['measure', '--output=json', '-O', 'qcow2', '-l', 's1', 'bm.qcow2']);
      same(['measure', '-O', 'qcow2', '-o', 'cluster_size=2M', '-l', 'snapshot.name=s1', 'bm.qcow2']);
    }
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'sh.qcow2', '16M'], { cwd });
    qemuIo(`${cwd}/sh.qcow2`, ['write -P 3 0 1M', 'write -P 4 12M 1M'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 's1', 'sh.qcow2'], { cwd });
    qemuImgOk(['resize', '--shrink', 'sh.qcow2', '8M'], { cwd });
    assert.equal(vdisk(['convert', '-l', 's1', '-O', 'raw', 'sh.qcow2', 'v.raw'], { cwd }).status, 0);
    qemuImgOk(['convert', '-l', 's1', '-O', 'raw', 'sh.qcow2', 'q.raw'], { cwd });
    assert.match(qemuImgOk(['compare', '-f', 'raw', '-F', 'raw', 'q.raw', 'v.raw'], { cwd }), /Images are identical/);
    assert.equal(statSync(`${cwd}/v.raw`).size, statSync(`${cwd}/q.raw`).size);
  });

  it('extent files named relative to the image as given (sub/x.vmdk)', (t) => {
    if (!requireQemu(t)) return;
    for (const name of ['sub/s.vmdk', 'sub/f.vmdk', './sub/f.vmdk']) {
      same(['map', name]);
      same(['map', '--output=json', name]);
    }
  });
});
