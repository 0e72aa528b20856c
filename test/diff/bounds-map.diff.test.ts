/**
 * `map` into a pipe: a small image can describe a huge map (here 448 KB of
 * metadata, 512 Ki extents, ~50 MB of JSON). qemu-img writes it with
 * blocking stdio (8 MB RSS); vdisk must wait for the pipe to drain instead
 * of queueing the whole output in memory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { hasTime, RSS_LIMIT_KIB, vdiskPeak } from '../helpers/bounds-rss.js';
import { VDISK_BIN } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/**
 * A 1 GiB qcow2 with extended L2 entries whose subclusters alternate
 * between unallocated and reads-as-zero: every 2 KiB is a map entry of its
 * own, and no data cluster exists.
 */
function stripedImage(name: string): void {
  const path = join(cwd, name);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=65536', path, '1G']);
  const head = readFileSync(path);
  const l1Entries = head.readUInt32BE(36);
  const l1Offset = Number(head.readBigUInt64BE(40));
  const end = Math.ceil(head.length / 65536) * 65536;
  const table = Buffer.alloc(65536);
  for (let i = 0; i < 65536; i += 16) table.writeBigUInt64BE(0xaaaaaaaan << 32n, i + 8);
  const fd = openSync(path, 'r+');
  try {
    for (let i = 0; i < l1Entries; i++) {
      writeSync(fd, table, 0, table.length, end + i * 65536);
      const entry = Buffer.alloc(8);
      entry.writeBigUInt64BE(BigInt(end + i * 65536) | (1n << 63n));
      writeSync(fd, entry, 0, 8, l1Offset + 8 * i);
    }
  } finally {
    closeSync(fd);
  }
}

function cksum(text: string): string {
  return spawnSync('cksum', { input: text, encoding: 'utf8' }).stdout;
}

describe('map honours back-pressure on stdout', () => {
  it('half a million extents into a slow pipe: output as qemu-img, bounded memory', (t) => {
    if (!requireQemu(t)) return;
    if (!hasTime) return t.skip('GNU time not installed');
    stripedImage('striped.qcow2');
    const q = qemuImg(['map', '--output=json', 'striped.qcow2'], { cwd });
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout.split('\n').length - 1, 512 * 1024, 'qemu-img maps 512 Ki extents');
    // the reader starts late, so the pipe is full from the first writes on
    const v = vdiskPeak(['map', '--output=json', 'striped.qcow2'], { cwd, pipeInto: 'sleep 1; cksum' });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, cksum(q.stdout), 'same bytes as qemu-img');
    assert.ok(v.peakKiB < RSS_LIMIT_KIB, `peak RSS ${v.peakKiB} KiB`);
  });
});

describe('map into a reader that stops early', () => {
  it('finishes quietly with its own status, as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    stripedImage('early.qcow2');
    const pipeline = (cmd: string[]): { status: number | null; stderr: string } =>
      spawnSync('/bin/bash', ['-c', 'set -o pipefail; "$@" | head -c 100 >/dev/null', 'bash', ...cmd], { cwd, encoding: 'utf8' });
    const q = pipeline(['qemu-img', 'map', '--output=json', 'early.qcow2']);
    const v = pipeline([process.execPath, VDISK_BIN, 'map', '--output=json', 'early.qcow2']);
    assert.equal(q.status, 0);
    assert.equal(v.stderr, '');
    assert.equal(v.status, q.status);
  });
});
