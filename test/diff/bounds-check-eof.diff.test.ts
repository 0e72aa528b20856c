/**
 * `check` on images cut short: every driver must find data and metadata
 * past the end of the file as qemu-img's check does (a truncated
 * streamOptimized VMDK used to pass with "No errors were found"). Each
 * image is made by qemu-img, copied, cut at fixed and proportional points
 * and checked by both tools: same exit code, stdout and stderr.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, VDISK_BIN } from '../helpers/cli.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** 4 MiB whose every 64 KiB cluster holds data (so every grain/block/cluster is allocated). */
function source(): string {
  const name = join(cwd, 'src.raw');
  const b = new Uint8Array(4 << 20);
  for (let i = 0; i < b.length; i += 65536) b.fill((i >>> 16) + 1, i, i + 100);
  writeFileSync(name, b);
  return name;
}

interface Case {
  /** Test label. */
  readonly label: string;
  /** qemu-img convert -O format and -o options. */
  readonly format: string;
  readonly options: string;
  /** The file that is cut (the image itself unless its data lives in another file). */
  readonly cut: (image: string) => string;
  /** Convert with -c. */
  readonly compress?: boolean;
  /** Also compare `info` (whose open validates what check only reports). */
  readonly info?: boolean;
  /** Also compare `check -r all` (a format without repair must say so, whatever the damage). */
  readonly repair?: boolean;
}

const self = (image: string): string => image;

/** Cut points: fixed offsets near the headers, and proportions of the file. */
function cutPoints(size: number): number[] {
  const fixed = [0, 100, 511, 65535, (1 << 20) + 512];
  const parts = [0.05, 0.5, 0.95].map((f) => Math.floor(size * f));
  return [...new Set([...fixed, ...parts, size - 511, size - 1])].filter((n) => n >= 0 && n < size).sort((a, b) => a - b);
}

/**
 * qemu's VHDX open fails without a message of its own where vdisk names the
 * broken structure (a deliberate difference): those compare by exit code.
 */
const QEMU_BARE_EINVAL = /^qemu-img: Could not open '([^']*)': Could not open '\1': Invalid argument\n$/;

/** One program run, asynchronously (the cuts of a case are checked side by side). */
function run(cmd: string, args: readonly string[], cwd: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** Same exit code, stdout and stderr for `args` from qemu-img and vdisk. */
async function same(args: readonly string[], where: string): Promise<void> {
  const [q, v] = await Promise.all([run('qemu-img', args, where), run(process.execPath, [VDISK_BIN, ...args], where)]);
  const what = `${args.join(' ')} in ${where}`;
  if (QEMU_BARE_EINVAL.test(q.stderr)) {
    assert.equal(v.status, q.status, `exit of ${what}`);
    assert.match(v.stderr, /^vdisk: Could not open '[^']*': /);
    return;
  }
  assert.equal(v.stderr, asVdisk(q.stderr), `stderr of ${what}`);
  assert.equal(v.stdout, q.stdout, `stdout of ${what}`);
  assert.equal(v.status, q.status, `exit of ${what}`);
}

/** Makes the image, then checks copies of it cut at every point, two cuts at a time. */
async function sweep(c: Case): Promise<void> {
  const base = join(cwd, c.label);
  mkdirSync(base);
  const image = 'img.' + c.format;
  qemuImgOk(['convert', '-f', 'raw', '-O', c.format, ...(c.compress ? ['-c'] : []), ...(c.options ? ['-o', c.options] : []), source(), join(base, image)]);
  const cutName = c.cut(image);
  const files = readdirSync(base);
  const jobs = cutPoints(statSync(join(base, cutName)).size).map((at, i) => async (): Promise<void> => {
    const where = join(base, `cut-${at}`);
    mkdirSync(where);
    for (const f of files) copyFileSync(join(base, f), join(where, f));
    truncateSync(join(where, cutName), at);
    await same(['check', '-U', image], where);
    if (i % 3 === 2) await same(['check', '-U', '--output=json', image], where);
    if (c.info) await same(['info', '-U', image], where);
    if (c.repair) await same(['check', '-r', 'all', image], where);
  });
  for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map((j) => j()));
}

const cases: Case[] = [
  { label: 'vmdk-streamOptimized', format: 'vmdk', options: 'subformat=streamOptimized', cut: self },
  { label: 'vmdk-monolithicSparse', format: 'vmdk', options: 'subformat=monolithicSparse', cut: self },
  { label: 'vmdk-twoGbMaxExtentSparse', format: 'vmdk', options: 'subformat=twoGbMaxExtentSparse', cut: () => 'img-s001.vmdk' },
  { label: 'vmdk-monolithicFlat', format: 'vmdk', options: 'subformat=monolithicFlat', cut: () => 'img-flat.vmdk' },
  { label: 'vhdx', format: 'vhdx', options: '', cut: self, info: true },
  { label: 'qcow2', format: 'qcow2', options: '', cut: self },
  { label: 'qcow2-compressed-zstd', format: 'qcow2', options: 'compression_type=zstd', cut: self, compress: true },
  { label: 'vdi', format: 'vdi', options: '', cut: self, repair: true },
  { label: 'vpc-dynamic', format: 'vpc', options: '', cut: self },
  { label: 'vpc-fixed', format: 'vpc', options: 'subformat=fixed', cut: self },
];

describe('check finds what a truncation left past the end of the file, as qemu-img does', () => {
  for (const c of cases) {
    it(c.label, async (t) => {
      if (!requireQemu(t)) return;
      await sweep(c);
    });
  }
});
