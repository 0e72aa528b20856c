/**
 * Shared by the parallels differential tests: QEMU's sample images
 * (test/fixtures/samples, bzip2 as shipped), small pokes into image files,
 * and running one command with both tools on twin copies of a directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg } from '../helpers/qemu.js';

/** The sample images QEMU's iotests ship for parallels. */
export const SAMPLES = ['parallels-v1', 'parallels-v2', 'parallels-with-bitmap'] as const;
/** The dirty bitmap of parallels-with-bitmap. */
export const SAMPLE_BITMAP = 'e4f2eed0-37fe-4539-b50b-85d2e7fd235f';

const SAMPLE_DIR = fileURLToPath(new URL('../../../test/fixtures/samples/', import.meta.url));

/** True when bzip2 can decompress the samples. */
export const hasBzip2 = spawnSync('bzip2', ['--help'], { encoding: 'utf8' }).status === 0;

/** Decompresses sample `name` to `dir/as` (default: its name). */
export function sample(name: string, dir: string, as = name): string {
  const r = spawnSync('bzip2', ['-dc', join(SAMPLE_DIR, `${name}.bz2`)], { maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`bzip2 -dc ${name}.bz2 failed: ${String(r.stderr)}`);
  const path = join(dir, as);
  writeFileSync(path, r.stdout);
  return path;
}

/** Writes `bytes` into `file` at `offset`. */
export function poke(file: string, offset: number, bytes: readonly number[]): void {
  const buf = readFileSync(file);
  Buffer.from(bytes).copy(buf, offset);
  writeFileSync(file, buf);
}

/** A little-endian u32 as bytes. */
export function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

/** What one tool printed, with the program name and copy directory made neutral. */
export interface Outcome {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

let twin = 0;

/**
 * Runs `args` with qemu-img in one copy of `dir` and with vdisk in another;
 * returns both outcomes (qemu's text in vdisk's words) and the two copies.
 */
export function both(dir: string, args: readonly string[]): { qemu: Outcome; vdisk: Outcome; qdir: string; vdir: string } {
  const n = twin++;
  const qdir = join(dir, '..', `q${n}`);
  const vdir = join(dir, '..', `v${n}`);
  for (const d of [qdir, vdir]) {
    mkdirSync(d);
    cpSync(dir, d, { recursive: true });
  }
  const q = qemuImg(args, { cwd: qdir });
  const v = vdisk(args, { cwd: vdir });
  return {
    qemu: { status: q.status ?? -1, stdout: q.stdout, stderr: asVdisk(q.stderr).replaceAll('qemu-img check', 'vdisk check') },
    vdisk: { status: v.status, stdout: v.stdout, stderr: v.stderr },
    qdir,
    vdir,
  };
}

/** Asserts both tools printed the same and left byte-identical files. */
export function assertSame(dir: string, args: readonly string[]): void {
  const r = both(dir, args);
  assert.deepEqual(r.vdisk, r.qemu, `vdisk ${args.join(' ')}`);
  for (const f of readdirSync(r.qdir)) {
    assert.ok(readFileSync(join(r.qdir, f)).equals(readFileSync(join(r.vdir, f))), `${f} differs after ${args.join(' ')}`);
  }
}
