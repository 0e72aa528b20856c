/**
 * issue 13 item 4: images whose signature belongs to a format vdisk cannot
 * open yet (qcow v1, QED, parallels, LUKS, bochs, cloop, dmg by name) are
 * refused by every command — also as backing files and with `-f NAME` —
 * never read, converted or resized as raw; `-f raw` still reads them as
 * raw, as qemu does. Probing follows qemu's rules (512 zero-padded bytes,
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

/** qemu-img's verdict on a file: the format it probes, or the start of its error. */
function qemuFormat(name: string): string {
  const r = qemuImg(['info', '--output=json', name], { cwd });
  if (r.status === 0) return (JSON.parse(r.stdout) as { format: string }).format;
  return 'error';
}

const REFUSED = ['qcow', 'qed', 'parallels', 'bochs', 'cloop', 'dmg'] as const;
const FILES: Record<(typeof REFUSED)[number], string> = {
  qcow: 'x.qcow',
  qed: 'x.qed',
  parallels: 'x.parallels',
  bochs: 'x.bochs',
  cloop: 'x.cloop',
  dmg: 'x.dmg',
};

describe('formats vdisk recognises but cannot open', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  before(() => {
    for (const f of ['qcow', 'qed', 'parallels'] as const) qemuImgOk(['create', '-q', '-f', f, FILES[f], '1M'], { cwd });
    writeFileSync(at(FILES.bochs), BOCHS);
    writeFileSync(at(FILES.cloop), CLOOP);
    writeFileSync(at(FILES.dmg), Buffer.alloc(4096, 0x41));
  });

  it('qemu-img probes each file as its format; vdisk refuses it by name, never as raw', (t) => {
    if (!requireQemu(t)) return;
    for (const f of REFUSED) {
      const q = qemuImg(['info', FILES[f]], { cwd });
      // qemu opens it as that format, or fails inside that format's driver (bochs/cloop/dmg stubs) — never raw
      if (q.status === 0) assert.match(q.stdout, new RegExp(`file format: ${f}\\n`), f);
      const r = vdisk(['info', FILES[f]], { cwd });
      assert.equal(r.status, 1, f);
      assert.equal(r.stdout, '', f);
      assert.equal(r.stderr, `vdisk: Could not open '${FILES[f]}': Image format '${f}' is not supported by vdisk yet\n`, f);
    }
  });

  it('every command refuses them and leaves the file untouched', (t) => {
    if (!requireQemu(t)) return;
    const before = readFileSync(at(FILES.qed));
    const commands: string[][] = [
      ['convert', '-O', 'raw', FILES.qed, 'out.raw'],
      ['resize', FILES.qed, '2M'],
      ['check', FILES.qed],
      ['map', FILES.qed],
      ['measure', '-O', 'qcow2', FILES.qed],
      ['commit', FILES.qed],
      ['snapshot', '-l', FILES.qed],
      ['amend', '-o', 'size=2M', FILES.qed],
      ['bitmap', '--add', FILES.qed, 'b'],
      ['dd', `if=${FILES.qed}`, 'of=dd.raw'],
      ['bench', '-c', '1', FILES.qed],
      ['info', '-f', 'qed', FILES.qed],
    ];
    for (const args of commands) {
      const r = vdisk(args, { cwd });
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, /Image format 'qed' is not supported by vdisk yet/, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    const cmp = vdisk(['compare', FILES.qed, FILES.qcow], { cwd });
    assert.equal(cmp.status, 2);
    assert.ok(readFileSync(at(FILES.qed)).equals(before), 'the image is unchanged');
  });

  it('-f raw still reads the file as raw, as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    for (const f of REFUSED) {
      const q = qemuImg(['info', '--output=json', '-f', 'raw', FILES[f]], { cwd });
      const r = vdisk(['info', '--output=json', '-f', 'raw', FILES[f]], { cwd });
      assert.equal(r.status, 0, f);
      const strip = (s: string): unknown => ({ ...(JSON.parse(s) as Record<string, unknown>), 'actual-size': undefined });
      assert.deepEqual(strip(r.stdout), strip(q.stdout), f);
    }
  });

  it('refuses them as backing files, recorded with or without a format', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', FILES.qed, '-F', 'qed', 'over-qed.qcow2'], { cwd });
    const r = vdisk(['map', 'over-qed.qcow2'], { cwd });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "vdisk: Could not open 'over-qed.qcow2': Could not open backing file: Could not open 'x.qed': Image format 'qed' is not supported by vdisk yet\n");
    // no recorded format: the backing file is probed as qemu probes it
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', FILES.parallels, '-F', 'raw', 'over-probed.qcow2'], { cwd });
    const img = readFileSync(at('over-probed.qcow2'));
    const ext = img.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    assert.ok(ext > 0);
    img.fill(0, ext, ext + 4); // drop the backing-format extension (it was the last one)
    writeFileSync(at('over-probed.qcow2'), img);
    const p = vdisk(['convert', '-O', 'raw', 'over-probed.qcow2', 'copy.raw'], { cwd });
    assert.equal(p.status, 1);
    assert.match(p.stderr, /Could not open backing file: Could not open 'x\.parallels': Image format 'parallels' is not supported by vdisk yet/);
  });

  it('cannot create them, with qemu-img\'s message for a format without creation', (t) => {
    if (!requireQemu(t)) return;
    for (const f of REFUSED) {
      const r = vdisk(['create', '-f', f, `new.${f}`, '1M'], { cwd });
      assert.equal(r.status, 1, f);
      assert.equal(r.stderr, `vdisk: new.${f}: Format driver '${f}' does not support image creation\n`, f);
    }
    writeFileSync(at('src.raw'), Buffer.alloc(65536));
    const conv = vdisk(['convert', '-O', 'qed', 'src.raw', 'conv.qed'], { cwd });
    assert.equal(conv.stderr, "vdisk: Format driver 'qed' does not support image creation\n");
    const help = vdisk(['create', '-f', 'bochs', '-o', 'help'], { cwd });
    const qhelp = qemuImg(['create', '-f', 'bochs', '-o', 'help'], { cwd });
    assert.equal(help.status, qhelp.status);
    assert.equal(help.stderr, asVdisk(qhelp.stderr));
  });
});

describe('probing follows qemu-img', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  /** Files whose probe result qemu and vdisk must agree on (raw, or the refused format). */
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
      const theirs = qemuFormat(name);
      const r = vdisk(['info', '--output=json', name], { cwd });
      if (theirs === 'raw') {
        assert.equal(r.status, 0, name);
        assert.equal((JSON.parse(r.stdout) as { format: string }).format, 'raw', name);
      } else {
        assert.equal(r.status, 1, `${name}: qemu says ${theirs}`);
        assert.doesNotMatch(r.stderr, /raw/, name);
      }
    }
    // qemu's verdicts, pinned: which of these are not raw
    assert.equal(qemuFormat('qcow2-magic-v0'), 'raw');
    assert.equal(qemuFormat('luks2'), 'raw');
    assert.equal(qemuFormat('parallels-v3'), 'raw');
    assert.equal(vdisk(['info', 'qcow-v1-short'], { cwd }).stderr, "vdisk: Could not open 'qcow-v1-short': Image format 'qcow' is not supported by vdisk yet\n");
    assert.equal(vdisk(['info', 'cloop.dmg'], { cwd }).stderr, "vdisk: Could not open 'cloop.dmg': Image format 'dmg' is not supported by vdisk yet\n");
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
