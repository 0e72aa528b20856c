/**
 * `check` with a million findings. A VDI block map of zeros (every block
 * claims image block 0) makes one finding per entry, a qcow2 whose
 * refcount blocks were wiped one per cluster: qemu-img prints them as it
 * goes (138 MB for 16 Mi VDI entries, 9 MB for the qcow2); vdisk must not
 * hold them all, nor queue them in front of a slow stderr reader.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { hasTime, RSS_LIMIT_KIB, vdiskPeak } from '../helpers/bounds-rss.js';
import { asVdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** A dynamic VDI of `blocks` 1 MiB blocks whose block map is all zeros (a sparse file). */
function zeroMapVdi(name: string, blocks: number): void {
  const h = Buffer.alloc(512);
  h.write('<<< QEMU VM Virtual Disk Image >>>\n', 0, 'latin1');
  h.writeUInt32LE(0xbeda107f, 0x40);
  h.writeUInt32LE(0x00010001, 0x44);
  h.writeUInt32LE(0x180, 0x48);
  h.writeUInt32LE(1, 0x4c);
  const data = Math.ceil((512 + blocks * 4) / 512) * 512;
  h.writeUInt32LE(512, 0x154);
  h.writeUInt32LE(data, 0x158);
  h.writeUInt32LE(512, 0x168);
  h.writeBigUInt64LE(BigInt(blocks) * 1048576n, 0x170);
  h.writeUInt32LE(1048576, 0x178);
  h.writeUInt32LE(blocks, 0x180);
  const fd = openSync(join(cwd, name), 'w');
  try {
    writeSync(fd, h, 0, 512, 0);
    ftruncateSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

function cksum(text: string): string {
  return spawnSync('cksum', { input: text, encoding: 'utf8' }).stdout;
}

describe('VDI check on a huge damaged block map', () => {
  it('a million findings into a slow pipe: what qemu-img prints, in bounded memory', (t) => {
    if (!requireQemu(t)) return;
    if (!hasTime) return t.skip('GNU time not installed');
    zeroMapVdi('zeros.vdi', 1024 * 1024);
    const q = qemuImg(['check', 'zeros.vdi'], { cwd });
    assert.equal(q.status, 2);
    assert.equal(q.stderr.split('\n').length - 1, 1024 * 1024, 'one line per entry but the first, plus the count');
    const v = vdiskPeak(['check', 'zeros.vdi'], { cwd, pipeInto: 'sleep 1; cksum', pipeStderr: true });
    assert.equal(v.status, 2, v.stderr);
    assert.equal(v.stdout, cksum(asVdisk(q.stderr)), 'the same lines as qemu-img');
    assert.ok(v.peakKiB < RSS_LIMIT_KIB, `peak RSS ${v.peakKiB} KiB`);
  });
});

/** A 256 MiB qcow2 of 512-byte clusters, every one allocated, whose refcount blocks are zeroed. */
function wipedRefcounts(name: string): void {
  const path = join(cwd, name);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512,preallocation=metadata', path, '256M']);
  const fd = openSync(path, 'r+');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    const table = Buffer.alloc(head.readUInt32BE(56) * 512);
    readSync(fd, table, 0, table.length, Number(head.readBigUInt64BE(48)));
    for (let i = 0; i < table.length; i += 8) {
      const block = Number(table.readBigUInt64BE(i));
      if (block) writeSync(fd, Buffer.alloc(512), 0, 512, block);
    }
  } finally {
    closeSync(fd);
  }
}

describe('qcow2 check with a million findings', () => {
  it('into a slow pipe: what qemu-img prints, in bounded memory', (t) => {
    if (!requireQemu(t)) return;
    if (!hasTime) return t.skip('GNU time not installed');
    wipedRefcounts('wiped.qcow2');
    const q = qemuImg(['check', 'wiped.qcow2'], { cwd });
    assert.equal(q.status, 2);
    assert.ok(q.stderr.split('\n').length > 1_000_000, 'qemu-img finds a million things');
    const v = vdiskPeak(['check', 'wiped.qcow2'], { cwd, pipeInto: 'sleep 1; cksum', pipeStderr: true });
    assert.equal(v.status, 2, v.stderr);
    assert.equal(v.stdout, cksum(asVdisk(q.stderr)), 'the same lines as qemu-img');
    assert.ok(v.peakKiB < RSS_LIMIT_KIB, `peak RSS ${v.peakKiB} KiB`);
  });
});
