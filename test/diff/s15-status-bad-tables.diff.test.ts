/**
 * Block status of a qcow2 image with a bad L1 entry (an unaligned L2 table
 * offset) or a bad L2 entry (an unaligned cluster offset) past its first
 * runs: qemu's block status answers up to the bad entry (no further than
 * the L2 table it looked in) and fails only the ask that starts there, so
 * `map` prints every entry before it and convert names the offset where it
 * stopped. vdisk's walks, which look ahead for the runs to come, failed
 * asks that began before the bad entry (no entries printed, an earlier
 * offset named). Compared here: the entries printed, the exit status, the
 * offset and the words before the cause ("Unable to get block status: ",
 * which measure lacked); qemu words the cause itself as the corruption
 * report and "Input/output error", vdisk as what the corruption is (left as
 * it is).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s15-bad-tables-');
after(() => dir.cleanup());
const cwd = dir.path;

/** Breaks the image: the second L1 entry, or L2 entry 300 of the first table (4 KiB clusters: 512 entries a table). */
function breakImage(file: string, what: 'l1' | 'l2'): void {
  const d = readFileSync(file);
  const l1 = Number(d.readBigUInt64BE(40));
  const at = what === 'l1' ? l1 + 8 : Number(d.readBigUInt64BE(l1) & 0x00fffffffffffe00n) + 300 * 8;
  d.writeBigUInt64BE(d.readBigUInt64BE(at) + 512n, at);
  writeFileSync(file, d);
}

function fresh(what: 'l1' | 'l2'): void {
  for (const f of ['b.qcow2', 't.qcow2', 'o.raw']) rmSync(join(cwd, f), { force: true });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', 'b.qcow2', '16M'], { cwd });
  qemuIo(join(cwd, 'b.qcow2'), ['write -P 1 0 1M', 'write -P 2 1200k 8k', 'write -P 3 3M 64k', 'write -P 4 5M 64k'], 'qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'], { cwd });
  breakImage(join(cwd, 'b.qcow2'), what);
}

/** The offset a failure names ("at offset N"), if any. */
const offsetIn = (stderr: string): string | undefined => /at offset (\d+)/.exec(stderr)?.[1];

describe('block status up to a bad table entry, as qemu-img', () => {
  for (const what of ['l1', 'l2'] as const) {
    it(`prints what comes before a bad ${what === 'l1' ? 'L1' : 'L2'} entry, and stops where qemu-img stops`, (t) => {
      if (!requireQemu(t)) return;
      for (const args of [
        ['map', '--output=json', 'b.qcow2'],
        ['map', 'b.qcow2'],
        ['map', '--output=json', 't.qcow2'],
        ['map', '--output=json', '-s', '1048576', 'b.qcow2'],
        ['convert', '-O', 'raw', 'b.qcow2', 'o.raw'],
        ['measure', '-O', 'qcow2', 'b.qcow2'],
        ['compare', 'b.qcow2', 't.qcow2'],
      ]) {
        fresh(what);
        const theirs = qemuImg(args, { cwd });
        fresh(what);
        const ours = vdisk(args, { cwd });
        const shown = `${what}: ${args.join(' ')}`;
        assert.equal(ours.stdout, theirs.stdout, shown);
        assert.equal(ours.status, theirs.status, shown);
        assert.equal(offsetIn(ours.stderr), offsetIn(theirs.stderr), shown);
        assert.notEqual(ours.status, 0, shown);
        // qemu-img's words up to the errno's: "Could not read file metadata: ", "Unable to get block status: ", …
        const lead = (stderr: string): string | undefined => /^(?:qemu-img|vdisk): ([^:]+: )/m.exec(stderr)?.[1];
        assert.equal(lead(ours.stderr), lead(theirs.stderr), shown);
      }
    });
  }
});
