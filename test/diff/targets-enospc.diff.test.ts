/**
 * A job that fails for want of space removes every file it
 * created — the descriptor or header and the data files and extents of a
 * multi-file target (monolithicFlat, twoGbMaxExtentFlat, qcow2 data_file) —
 * so the file system is as full as before; files that existed before the
 * job stay. Runs on a small tmpfs (needs root to mount it). A relative data
 * file name is relative to the working directory, as in qemu.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-targets-enospc-');
const cwd = dir.path;
const fs = join(cwd, 'small');
let mounted = false;

before(() => {
  mkdirSync(fs);
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', fs]).status === 0;
  writeFileSync(join(cwd, 'src.raw'), randomBytes(16 * 1024 * 1024));
});
after(() => {
  if (mounted) spawnSync('umount', [fs]);
  dir.cleanup();
});

/** Starts a case on an empty file system. */
function empty(): void {
  for (const f of readdirSync(fs)) rmSync(join(fs, f), { force: true });
}

/** The files on the small file system and its free blocks. */
function state(): { files: string[]; free: number } {
  return { files: readdirSync(fs).sort(), free: statfsSync(fs).bavail };
}

const cases: readonly (readonly [string, readonly string[]])[] = [
  ['convert to a monolithicFlat vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', 'src.raw', 'small/t.vmdk']],
  ['convert to a twoGbMaxExtentFlat vmdk', ['convert', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', 'src.raw', 'small/t.vmdk']],
  ['convert to a qcow2 with a data file', ['convert', '-O', 'qcow2', '-o', 'data_file=small/t.raw', 'src.raw', 'small/t.qcow2']],
  ['convert to a raw file', ['convert', '-O', 'raw', 'src.raw', 'small/t.raw']],
  ['create a preallocated qcow2 with a data file', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=small/c.raw,preallocation=full', 'small/c.qcow2', '16M']],
  ['dd to a raw file', ['dd', '-O', 'raw', 'if=src.raw', 'of=small/d.raw']],
];

describe('a target that fills the file system is removed whole', () => {
  for (const env of [{}, { VDISK_NO_NATIVE: '1' }]) {
    const mode = env.VDISK_NO_NATIVE ? 'without the native module' : 'with the native module';
    for (const [what, args] of cases) {
      it(`${what} (${mode})`, (t) => {
        if (!mounted) return t.skip('cannot mount a tmpfs (needs root)');
        empty();
        const was = state();
        const r = vdisk(args, { cwd, env });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /No space left on device/);
        assert.deepEqual(state(), was, 'no file is left and the space is free again');
      });
    }
  }

  it('an extent that existed before the job stays', (t) => {
    if (!mounted) return t.skip('cannot mount a tmpfs (needs root)');
    empty();
    writeFileSync(join(fs, 'keep-flat.vmdk'), 'old');
    const r = vdisk(['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', 'src.raw', 'small/keep.vmdk'], { cwd });
    assert.equal(r.status, 1, r.stderr);
    assert.deepEqual(readdirSync(fs), ['keep-flat.vmdk']);
  });
});

describe("a full disk while growing a file is worded as qemu-img words the step (file-posix's preallocation)", () => {
  it('convert, create and resize with preallocation off, metadata, falloc and full (raw and qcow2)', (t) => {
    if (!requireQemu(t)) return;
    if (!mounted) return t.skip('cannot mount a tmpfs (needs root)');
    for (const fmt of ['raw', 'qcow2']) {
      for (const mode of ['off', 'metadata', 'falloc', 'full']) {
        if (fmt === 'raw' && mode === 'metadata') continue;
        const runs: string[][] = [['create', '-f', fmt, '-o', `preallocation=${mode}`, 'small/g.img', '12M']];
        // Without preallocation, convert fills the disk with data writes, several in flight: which one meets
        // the full disk first is the scheduler's, in vdisk as in qemu-img (their wording is tested in s7-write-errors).
        if (mode !== 'off') runs.push(['convert', '-f', 'raw', '-O', fmt, '-o', `preallocation=${mode}`, 'src.raw', 'small/g.img']);
        if (mode !== 'off') runs.push(['resize', '-f', fmt, `--preallocation=${mode}`, 'small/g.img', '12M']);
        for (const args of runs) {
          const prepare = (): void => {
            empty();
            if (args[0] === 'resize') qemuImgOk(['create', '-q', '-f', fmt, join(fs, 'g.img'), '64K']);
          };
          prepare();
          const theirs = qemuImg(args, { cwd });
          prepare();
          const ours = vdisk(args, { cwd });
          assert.equal(ours.stderr, asVdisk(theirs.stderr), args.join(' '));
          assert.equal(ours.status, theirs.status, args.join(' '));
        }
      }
    }
    empty();
  });
});
