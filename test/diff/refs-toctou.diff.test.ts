/**
 * References are checked where they are opened. Under
 * `untrusted`, a FLAT extent, a backing file or a data file whose name is
 * switched (a symlink flipped to a file outside the image's directory)
 * between its check and its open is refused, as is a hard link to a file
 * from elsewhere; the default (qemu) mode still follows both as qemu-img does.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, linkSync, existsSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { UnsafeReferenceError } from '../../src/core/errors.js';
import { convert } from '../../src/jobs/convert.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;
const dir = tmpDir('vdisk-refs-toctou-');
after(() => dir.cleanup());
const p = (...names: string[]): string => join(dir.path, ...names);

mkdirSync(p('up'));
writeFileSync(p('outside.bin'), Buffer.alloc(MiB, 'O'));
writeFileSync(p('up', 'inside.bin'), Buffer.alloc(MiB, 'I'));

/** A monolithicFlat descriptor naming `extent` (what qemu-img writes, by hand: no qemu needed). */
function flatDescriptor(path: string, extent: string): void {
  writeFileSync(path, `# Disk DescriptorFile\nversion=1\nCID=32edadc1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW ${MiB / 512} FLAT "${extent}" 0\n\nddb.virtualHWVersion = "4"\nddb.adapterType = "ide"\n`);
}

/** Points the symlink `link` at `to`, atomically (rename over it). */
function pointLink(link: string, to: string): void {
  const tmp = `${link}.new`;
  rmSync(tmp, { force: true });
  symlinkSync(to, tmp);
  renameSync(tmp, link);
}

/**
 * Flips `link` to `to` right after the resolver's check of it (its realpath),
 * so the open that follows the check sees the other file: the race, made
 * deterministic. Returns the undo.
 */
function flipAfterCheck(link: string, to: string): () => void {
  // The resolver's realpath is node:fs's callback call (io/fs-calls.ts).
  const fs = createRequire(import.meta.url)('node:fs') as { realpath: (...a: unknown[]) => void };
  const original = fs.realpath;
  let flipped = false;
  fs.realpath = (...args: unknown[]) => {
    const done = args[args.length - 1] as (...r: unknown[]) => void;
    original(...args.slice(0, -1), (...r: unknown[]) => {
      if (!flipped && String(args[0]) === link) {
        flipped = true;
        pointLink(link, to);
      }
      done(...r);
    });
  };
  syncBuiltinESMExports();
  return () => {
    fs.realpath = original;
    syncBuiltinESMExports();
  };
}

/** Converts `source` to raw under `trust`; returns the output's first byte, or the error. */
async function convertFirstByte(source: string, out: string, trust: 'untrusted' | 'qemu'): Promise<string | Error> {
  rmSync(out, { force: true });
  try {
    await convert(source, out, { targetFormat: 'raw', trust });
  } catch (err) {
    return err as Error;
  }
  return String.fromCharCode(readFileSync(out)[0] ?? 0);
}

function assertRefused(r: string | Error): void {
  assert.ok(r instanceof UnsafeReferenceError, `expected a refusal, got ${r instanceof Error ? r.message : `output starting '${r}'`}`);
  assert.match(r.message, /outside|hard links/);
}

describe('untrusted references are checked on the opened file', () => {
  it('a FLAT extent symlink flipped outside after its check is refused', async () => {
    flatDescriptor(p('up', 'd.vmdk'), 'd-flat.vmdk');
    pointLink(p('up', 'd-flat.vmdk'), 'inside.bin');
    assert.equal(await convertFirstByte(p('up', 'd.vmdk'), p('out.raw'), 'untrusted'), 'I');
    const undo = flipAfterCheck(p('up', 'd-flat.vmdk'), '../outside.bin');
    try {
      assertRefused(await convertFirstByte(p('up', 'd.vmdk'), p('out.raw'), 'untrusted'));
    } finally {
      undo();
    }
    assert.ok(!existsSync(p('out.raw')));
  });

  it('a backing file symlink flipped outside after its check is refused', async (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(p('up', 'inside.raw'), Buffer.alloc(MiB, 'I'));
    pointLink(p('up', 'base.raw'), 'inside.raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', p('up', 'top.qcow2'), '1M']);
    assert.equal(await convertFirstByte(p('up', 'top.qcow2'), p('out.raw'), 'untrusted'), 'I');
    const undo = flipAfterCheck(p('up', 'base.raw'), '../outside.bin');
    try {
      assertRefused(await convertFirstByte(p('up', 'top.qcow2'), p('out.raw'), 'untrusted'));
    } finally {
      undo();
    }
  });

  it('a qcow2 data file symlink flipped outside after its check is refused', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-q', '-O', 'qcow2', '-o', 'data_file=data.bin,data_file_raw=on', 'inside.bin', 'df.qcow2'], { cwd: p('up') });
    renameSync(p('up', 'data.bin'), p('up', 'data-inside.bin'));
    pointLink(p('up', 'data.bin'), 'data-inside.bin');
    assert.equal(await convertFirstByte(p('up', 'df.qcow2'), p('out.raw'), 'untrusted'), 'I');
    const undo = flipAfterCheck(p('up', 'data.bin'), '../outside.bin');
    try {
      assertRefused(await convertFirstByte(p('up', 'df.qcow2'), p('out.raw'), 'untrusted'));
    } finally {
      undo();
    }
  });

  it('a hard link to a file from outside is refused under untrusted, followed as qemu-img does by default', async (t) => {
    linkSync(p('outside.bin'), p('up', 'hard.bin'));
    flatDescriptor(p('up', 'h.vmdk'), 'hard.bin');
    assertRefused(await convertFirstByte(p('up', 'h.vmdk'), p('out.raw'), 'untrusted'));
    assert.equal(await convertFirstByte(p('up', 'h.vmdk'), p('out.raw'), 'qemu'), 'O');
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-O', 'raw', p('up', 'h.vmdk'), p('qemu.raw')]);
    assert.ok(readFileSync(p('qemu.raw')).equals(readFileSync(p('out.raw'))));
  });

  it('60 untrusted converts while another thread flips the extent symlink never leak the outside file', async () => {
    flatDescriptor(p('up', 'r.vmdk'), 'r-flat.vmdk');
    pointLink(p('up', 'r-flat.vmdk'), 'inside.bin');
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const flipper = new Worker(
      `const { symlinkSync, renameSync, rmSync } = require('node:fs');
       const { workerData: { link, targets, stop } } = require('node:worker_threads');
       for (let i = 0; Atomics.load(stop, 0) === 0; i++) {
         const tmp = link + '.flip';
         rmSync(tmp, { force: true });
         symlinkSync(targets[i % 2], tmp);
         renameSync(tmp, link);
       }`,
      { eval: true, workerData: { link: p('up', 'r-flat.vmdk'), targets: ['../outside.bin', 'inside.bin'], stop } },
    );
    const outcomes = { inside: 0, refused: 0, leaked: 0 };
    try {
      for (let i = 0; i < 60; i++) {
        const r = await convertFirstByte(p('up', 'r.vmdk'), p('race.raw'), 'untrusted');
        if (r === 'O') outcomes.leaked++;
        else if (r === 'I') outcomes.inside++;
        else outcomes.refused++;
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await new Promise((resolve) => flipper.once('exit', resolve));
    }
    assert.equal(outcomes.leaked, 0, `the outside file leaked (${JSON.stringify(outcomes)})`);
  });
});
