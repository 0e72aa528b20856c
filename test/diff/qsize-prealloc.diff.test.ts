/**
 * qcow2 preallocation against qemu-img 7.2:
 * `create`, `convert -O qcow2` and `resize --preallocation` with metadata,
 * falloc and full, at cluster sizes from 512 bytes to 2 MiB, with extended
 * L2, compat=0.10, backing files and external data files, give the image
 * qemu-img gives: the same info, map (allocation and zero flags), check
 * counts and guest content. Before the fix `full` wrote zeros over the
 * header (the file then probed as raw), and resize wrote zeros where qemu
 * only maps clusters.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { convert, create, resize } from '../../src/index.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSameImage } from '../helpers/qsize-compare.js';

const dir = tmpDir('vdisk-qsize-prealloc-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (name: string): string => join(cwd, name);

const MODES = ['metadata', 'falloc', 'full'] as const;

function format(file: string): string {
  return (JSON.parse(qemuImgOk(['info', '--output=json', file])) as { format: string }).format;
}

describe('create -o preallocation like qemu-img', () => {
  const cases: readonly { label: string; options: string; size: number }[] = [
    ...['512', '65536', '2M'].flatMap((cs) => MODES.map((m) => ({ label: `${m}, ${cs}-byte clusters`, options: `preallocation=${m},cluster_size=${cs}`, size: 3 * 1024 * 1024 + 512 }))),
    ...MODES.map((m) => ({ label: `${m}, extended L2`, options: `preallocation=${m},cluster_size=16384,extended_l2=on`, size: 1000 * 1024 })),
    { label: 'full, compat=0.10', options: 'preallocation=full,compat=0.10', size: 1024 * 1024 },
    { label: 'full, refcount_bits=1, 4k clusters', options: 'preallocation=full,refcount_bits=1,cluster_size=4096', size: 1024 * 1024 },
    { label: 'falloc, empty image', options: 'preallocation=falloc', size: 0 },
  ];
  for (const c of cases) {
    it(c.label, async (t) => {
      if (!requireQemu(t)) return;
      const name = `create-${c.options.replaceAll(/[=,]/g, '-')}`;
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', c.options, at(`${name}-q.qcow2`), String(c.size)]);
      await create(at(`${name}-v.qcow2`), { format: 'qcow2', size: c.size, options: c.options });
      assert.equal(format(at(`${name}-v.qcow2`)), 'qcow2');
      assertSameImage(at(`${name}-q.qcow2`), at(`${name}-v.qcow2`), c.label);
      assert.equal(statSync(at(`${name}-v.qcow2`)).size, statSync(at(`${name}-q.qcow2`)).size, `${c.label}: file size`);
    });
  }

  it('with a backing file (extended L2): preallocated clusters still read the backing file', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'raw', at('cb.raw'), '2M']);
    qemuIo(at('cb.raw'), ['write -P 9 0 2M'], 'raw');
    for (const m of MODES) {
      const options = `preallocation=${m},cluster_size=65536,extended_l2=on,backing_file=cb.raw,backing_fmt=raw`;
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', options, at(`cb-${m}-q.qcow2`), '3M']);
      await create(at(`cb-${m}-v.qcow2`), { format: 'qcow2', size: '3M', options });
      assertSameImage(at(`cb-${m}-q.qcow2`), at(`cb-${m}-v.qcow2`), m);
    }
  });

  it('the CLI too', (t) => {
    if (!requireQemu(t)) return;
    for (const m of MODES) {
      const q = qemuImg(['create', '-f', 'qcow2', '-o', `preallocation=${m}`, `cli-${m}-q.qcow2`, '64M'], { cwd });
      const v = vdisk(['create', '-f', 'qcow2', '-o', `preallocation=${m}`, `cli-${m}-v.qcow2`, '64M'], { cwd });
      assert.equal(v.status, q.status);
      assert.equal(v.stdout.replaceAll('-v.qcow2', '-q.qcow2'), q.stdout);
      assertSameImage(at(`cli-${m}-q.qcow2`), at(`cli-${m}-v.qcow2`), m);
    }
  });
});

describe('convert -O qcow2 -o preallocation like qemu-img', () => {
  it('every mode, small to large clusters', async (t) => {
    if (!requireQemu(t)) return;
    const src = at('conv-src.raw');
    qemuImgOk(['create', '-q', '-f', 'raw', src, '3M']);
    qemuIo(src, ['write -P 1 0 1M', 'write -P 2 2M 100k', 'write -z 2500k 64k'], 'raw');
    const runs = [...MODES.map((m) => [m, '65536'] as const), ['full', '512'] as const, ['full', '2M'] as const, ['metadata', '2M'] as const];
    for (const [m, cs] of runs) {
      const options = `preallocation=${m},cluster_size=${cs}`;
      const name = `conv-${m}-${cs}`;
      qemuImgOk(['convert', '-O', 'qcow2', '-o', options, src, at(`${name}-q.qcow2`)]);
      await convert(src, at(`${name}-v.qcow2`), { targetFormat: 'qcow2', options });
      assert.equal(format(at(`${name}-v.qcow2`)), 'qcow2');
      assertSameImage(at(`${name}-q.qcow2`), at(`${name}-v.qcow2`), options);
    }
  });
});

/** A qcow2 image of 1100k (not cluster-aligned for 2 MiB clusters) with data, from qemu-img. */
function base(name: string, options: string, backing?: string): string {
  const file = at(`${name}-base.qcow2`);
  const opts = backing ? `${options},backing_file=${backing},backing_fmt=raw` : options;
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', opts, file, '1100k']);
  qemuIo(file, ['write -P 1 0 1000k', 'write -P 2 1090k 10k'], 'qcow2');
  return file;
}

describe('resize --preallocation like qemu-img', () => {
  const layouts = ['cluster_size=65536', 'cluster_size=512', 'cluster_size=2M', 'cluster_size=16384,extended_l2=on', 'cluster_size=65536,extended_l2=on', 'compat=0.10'];
  for (const m of MODES) {
    it(`${m}: every layout, with and without a backing file`, async (t) => {
      if (!requireQemu(t)) return;
      qemuImgOk(['create', '-q', '-f', 'raw', at('rb.raw'), '4M']);
      qemuIo(at('rb.raw'), ['write -P 9 0 4M'], 'raw');
      const runs = [...layouts.map((l) => ({ l, backing: undefined as string | undefined })), { l: 'cluster_size=65536', backing: 'rb.raw' }, { l: 'cluster_size=16384,extended_l2=on', backing: 'rb.raw' }];
      for (const { l, backing } of runs) {
        const name = `rs-${m}-${l.replaceAll(/[=,]/g, '-')}-${backing ? 'b' : 'n'}`;
        const image = base(name, l, backing);
        copyFileSync(image, at(`${name}-q.qcow2`));
        copyFileSync(image, at(`${name}-v.qcow2`));
        const q = qemuImg(['resize', '-q', `--preallocation=${m}`, at(`${name}-q.qcow2`), '4271k']);
        const label = `${m}, ${l}${backing ? ', backing file' : ''}`;
        if (q.status === 0) await resize(at(`${name}-v.qcow2`), '4271k', { preallocation: m });
        else await assert.rejects(resize(at(`${name}-v.qcow2`), '4271k', { preallocation: m }), (e: Error) => e.message === asVdisk(q.stderr).replace(/^vdisk: /, '').trim(), label);
        assertSameImage(at(`${name}-q.qcow2`), at(`${name}-v.qcow2`), label);
      }
    });
  }
});

describe('external data files', () => {
  /** Runs `args` with both tools on twin images whose data files are `<name>-{q,v}.data`. */
  function twins(name: string, options: string, steps: readonly (readonly string[])[]): void {
    for (const who of ['q', 'v'] as const) {
      const args = ['create', '-q', '-f', 'qcow2', '-o', `${options},data_file=${name}-${who}.data`, `${name}-${who}.qcow2`, '3M'];
      const r = who === 'q' ? qemuImg(args, { cwd }) : vdisk(args, { cwd });
      assert.equal(r.status, 0, r.stderr);
      const io = spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 1 0 1M', '-c', 'write -P 2 2500k 100k', `${name}-${who}.qcow2`], { cwd, encoding: 'utf8' });
      assert.equal(io.status, 0, io.stderr);
    }
    for (const step of steps) {
      const q = qemuImg([step[0]!, ...step.slice(1).map((a) => a.replace('IMG', `${name}-q.qcow2`))], { cwd });
      const v = vdisk([step[0]!, ...step.slice(1).map((a) => a.replace('IMG', `${name}-v.qcow2`))], { cwd });
      assert.equal(v.status, q.status, `${name} ${step.join(' ')}: ${v.stderr}`);
      assert.equal(v.stderr, asVdisk(q.stderr).replaceAll(`${name}-q`, `${name}-v`));
    }
    assertSameImage(`${name}-q.qcow2`, `${name}-v.qcow2`, name, { cwd });
    const qs = statSync(at(`${name}-q.data`));
    const vs = statSync(at(`${name}-v.data`));
    assert.equal(vs.size, qs.size, `${name}: data file size`);
    // Allocated space: the same up to file-system bookkeeping blocks.
    assert.ok(Math.abs(vs.blocks - qs.blocks) <= 64, `${name}: data file blocks ${vs.blocks} vs ${qs.blocks}`);
  }

  for (const m of ['off', ...MODES]) {
    for (const raw of ['off', 'on']) {
      it(`create preallocation=${m}, data_file_raw=${raw}`, (t) => {
        if (!requireQemu(t)) return;
        twins(`df-${m}-${raw}`, `preallocation=${m},data_file_raw=${raw}`, []);
      });
    }
  }

  it('data_file_raw=on: growing maps the new part 1:1 into the data file (resize and amend size=)', (t) => {
    if (!requireQemu(t)) return;
    twins('dfr-resize', 'data_file_raw=on', [['resize', 'IMG', '+2M']]);
    twins('dfr-amend', 'data_file_raw=on', [['amend', '-o', 'size=5M', 'IMG']]);
    twins('dfr-shrink-grow', 'data_file_raw=on', [['resize', '--shrink', 'IMG', '1M'], ['resize', 'IMG', '3000k']]);
  });

  it('resize --preallocation with a data file', (t) => {
    if (!requireQemu(t)) return;
    for (const m of MODES) twins(`dfp-${m}`, 'data_file_raw=off', [['resize', `--preallocation=${m}`, 'IMG', '5001k']]);
    twins('dfp-off', 'data_file_raw=off', [['resize', 'IMG', '+2M']]);
  });
});
