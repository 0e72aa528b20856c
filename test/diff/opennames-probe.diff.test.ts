/**
 * Every format of qemu-img 7.2's list is probed and opened as qemu-img
 * probes and opens it — also as a backing file and with `-f NAME` — and
 * never read, converted or resized as raw; `-f raw` still reads such a file
 * as raw, as qemu does. Probing follows qemu's rules (512 zero-padded bytes,
 * version checks, scores), checked against qemu-img's own probe.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);

/** A 512-byte header with `fields` written at their offsets. */
function header(fields: readonly [number, Uint8Array | string][], size = 512): Buffer {
  const b = Buffer.alloc(size);
  for (const [off, v] of fields) (typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v)).copy(b, off);
  return b;
}
const u32le = (n: number): Uint8Array => Uint8Array.from([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]);

// Hand-made files of the formats qemu-img cannot create (bochs, cloop) or only names (dmg).
const BOCHS = header([[0, 'Bochs Virtual HD Image'], [32, 'Redolog'], [48, 'Growing'], [64, u32le(0x00020000)]]);
const CLOOP = Buffer.from('#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n', 'latin1');
/** qemu-img's stderr as vdisk words it (without the note of Debian's dmg module). */
const qemuStderr = (text: string): string => asVdisk(text.replace(/^qemu: module block-block-dmg.*\n/gm, ''));

/** qemu-img's verdict on a file: the format it probes, or the start of its error. */
function qemuFormat(name: string): string {
  const r = qemuImg(['info', '--output=json', name], { cwd });
  if (r.status === 0) return (JSON.parse(r.stdout) as { format: string }).format;
  return 'error';
}

const CREATABLE = ['qcow', 'qed', 'parallels', 'luks'] as const;
const FILES: Record<string, string> = { qcow: 'x.qcow', qed: 'x.qed', parallels: 'x.parallels', luks: 'x.luks', bochs: 'x.bochs', cloop: 'x.cloop', dmg: 'x.dmg' };

describe('the formats beyond the first wave', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  before(() => {
    for (const f of ['qcow', 'qed', 'parallels'] as const) qemuImgOk(['create', '-q', '-f', f, FILES[f] as string, '1M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'luks', '--object', 'secret,id=s0,data=abc', '-o', 'key-secret=s0,iter-time=10', FILES['luks'] as string, '1M'], { cwd });
    writeFileSync(at('x.bochs'), BOCHS);
    writeFileSync(at('x.cloop'), CLOOP);
    writeFileSync(at('x.dmg'), Buffer.alloc(4096, 0x41));
  });

  it('are probed and described as qemu-img describes them', (t) => {
    if (!requireQemu(t)) return;
    for (const name of Object.values(FILES)) {
      for (const args of [['info', name], ['info', '--output=json', name]]) {
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(r.status, q.status, args.join(' '));
        assert.equal(r.stdout, q.stdout, args.join(' '));
        assert.equal(r.stderr, qemuStderr(q.stderr), args.join(' '));
      }
    }
  });

  it('read back as qemu-img reads them, and commands leave the files untouched', (t) => {
    if (!requireQemu(t)) return;
    for (const f of ['qcow', 'qed', 'parallels'] as const) {
      const name = FILES[f] as string;
      const before = readFileSync(at(name));
      for (const args of [['map', '--output=json', name], ['check', name], ['measure', '-O', 'qcow2', name]]) {
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(r.status, q.status, args.join(' '));
        assert.equal(r.stdout, q.stdout, args.join(' '));
      }
      assert.equal(vdisk(['compare', name, FILES['qcow'] as string], { cwd }).status, 0, name);
      assert.ok(readFileSync(at(name)).equals(before), `${name} is unchanged`);
    }
  });

  it('-f raw still reads the file as raw, as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    for (const f of CREATABLE) {
      const q = qemuImg(['info', '--output=json', '-f', 'raw', FILES[f] as string], { cwd });
      const r = vdisk(['info', '--output=json', '-f', 'raw', FILES[f] as string], { cwd });
      assert.equal(r.status, 0, f);
      const strip = (s: string): unknown => ({ ...(JSON.parse(s) as Record<string, unknown>), 'actual-size': undefined });
      assert.deepEqual(strip(r.stdout), strip(q.stdout), f);
    }
  });

  it('open as backing files, recorded with or without a format', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', FILES['qed'] as string, '-F', 'qed', 'over-qed.qcow2'], { cwd });
    const args = ['map', '--output=json', 'over-qed.qcow2'];
    assert.equal(vdisk(args, { cwd }).stdout, qemuImg(args, { cwd }).stdout);
    // no recorded format: the backing file is probed as qemu probes it
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', FILES['parallels'] as string, '-F', 'raw', 'over-probed.qcow2'], { cwd });
    const img = readFileSync(at('over-probed.qcow2'));
    const ext = img.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    assert.ok(ext > 0);
    img.fill(0, ext, ext + 4); // drop the backing-format extension (it was the last one)
    writeFileSync(at('over-probed.qcow2'), img);
    const p = vdisk(['convert', '-O', 'raw', 'over-probed.qcow2', 'copy.raw'], { cwd });
    assert.equal(p.status, 0, p.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'parallels', 'copy.raw', FILES['parallels'] as string], { cwd }).status, 0);
  });

  it('the read-only formats cannot be created, with qemu-img\'s words', (t) => {
    if (!requireQemu(t)) return;
    for (const f of ['bochs', 'cloop', 'dmg']) {
      for (const args of [['create', '-f', f, `new.${f}`, '1M'], ['create', '-f', f, '-o', 'help']]) {
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(r.status, q.status, args.join(' '));
        assert.equal(r.stderr, qemuStderr(q.stderr), args.join(' '));
      }
    }
  });
});

describe('probing follows qemu-img', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  /** Files whose probe result qemu and vdisk must agree on. */
  const CASES: [string, Buffer][] = [
    ['qcow-v1-short', Buffer.from('QFI\xfb\0\0\0\x01', 'latin1')], // zero-padded to a 48-byte header: qcow
    ['qcow2-magic-v0', Buffer.from('QFI\xfb\0\0\0\x00', 'latin1')], // neither qcow nor qcow2: raw
    ['qed-4-bytes', Buffer.from('QED\0', 'latin1')],
    ['parallels-v3', header([[0, 'WithoutFreeSpace'], [16, u32le(3)]])],
    ['parallels-ext', header([[0, 'WithouFreSpacExt'], [16, u32le(2)]])],
    ['luks2', Buffer.from('LUKS\xba\xbe\0\x02', 'latin1')],
    ['luks1-short', Buffer.from('LUKS\xba\xbe\0\x01', 'latin1')],
    ['bochs-v1', header([[0, 'Bochs Virtual HD Image'], [32, 'Redolog'], [48, 'Growing'], [64, u32le(0x00010000)]])],
    ['bochs-bad-type', header([[0, 'Bochs Virtual HD Image'], [32, 'Redologs'], [48, 'Growing'], [64, u32le(0x00020000)]])],
    ['cloop-prefix', CLOOP.subarray(0, 24)], // a prefix only: zero padding breaks the match
    ['cloop.dmg', CLOOP], // equal weak scores: dmg wins, as in qemu's driver order
    ['empty.dmg', Buffer.alloc(0)], // an empty file is raw whatever its name
    ['upper.DMG', Buffer.alloc(512, 1)],
  ];

  it('agrees with qemu-img on which files are raw and which belong to another format', (t) => {
    if (!requireQemu(t)) return;
    for (const [name, bytes] of CASES) {
      writeFileSync(at(name), bytes);
      const q = qemuImg(['info', '--output=json', name], { cwd });
      const r = vdisk(['info', '--output=json', name], { cwd });
      assert.equal(r.status, q.status, name);
      assert.equal(r.stdout, q.stdout, name);
      assert.equal(r.stderr, qemuStderr(q.stderr), name);
    }
    // qemu's verdicts, pinned: which of these are not raw
    assert.equal(qemuFormat('qcow2-magic-v0'), 'raw');
    assert.equal(qemuFormat('luks2'), 'raw');
    assert.equal(qemuFormat('parallels-v3'), 'raw');
  });

  it('the qcow2 probe claims every version from 2 up (qemu reports the version), never qcow v1', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'v3.qcow2', '1M'], { cwd });
    const img = readFileSync(at('v3.qcow2'));
    img.writeUInt32BE(4, 4);
    writeFileSync(at('v4.qcow2'), img);
    const q = qemuImg(['info', 'v4.qcow2'], { cwd });
    const r = vdisk(['info', 'v4.qcow2'], { cwd });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, asVdisk(q.stderr));
  });
});
