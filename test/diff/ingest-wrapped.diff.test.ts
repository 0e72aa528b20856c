/**
 * Wrapped uploads. A gzip'd or zip'd image is inflated
 * into a private temporary directory (never beside the target), its
 * references resolve as if it sat in the upload's own directory, inflation
 * is capped, `info` and `check` see the same image `convert` does, and
 * damaged, encrypted or bzip2 zip entries fail with typed errors.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { VDISK_BIN, vdisk } from '../helpers/cli.js';
import { SYSTEM_PYTHON } from '../helpers/python.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-ingest-wrapped-');
after(() => dir.cleanup());
const uploads = join(dir.path, 'uploads');
const targets = join(dir.path, 'targets');
const scratch = join(dir.path, 'tmp');
for (const d of [uploads, targets, scratch]) mkdirSync(d);
// The victim sits beside the targets only: an upload naming it must not reach it.
const VICTIM = 0xa5;
writeFileSync(join(targets, 'victim.raw'), new Uint8Array(1 << 20).fill(VICTIM));
const env = { TMPDIR: scratch };

const gzip = (from: string, to: string): void => writeFileSync(to, gzipSync(readFileSync(from)));
const hasZip = (() => {
  try {
    execFileSync('zip', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A qcow2 upload whose backing file is `victim.raw` (which is not in the upload's directory). */
function backedUpload(name: string): string {
  const path = join(uploads, name);
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', 'victim.raw', '-F', 'raw', path, '1M']);
  return path;
}

/** A vmdk descriptor whose FLAT extent is `victim.raw`. */
function flatDescriptor(path: string): string {
  const text = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=fffffffe',
    'parentCID=ffffffff',
    'createType="monolithicFlat"',
    '',
    'RW 2048 FLAT "victim.raw" 0',
    '',
    'ddb.virtualHWVersion = "4"',
    'ddb.geometry.cylinders = "2"',
    'ddb.geometry.heads = "16"',
    'ddb.geometry.sectors = "63"',
    'ddb.adapterType = "ide"',
    '',
  ].join('\n');
  writeFileSync(path, text);
  return path;
}

/** True when `file` holds a byte of the victim's pattern. */
const leaks = (file: string): boolean => existsSync(file) && readFileSync(file).includes(VICTIM);

describe('ingest: wrapped uploads stay confined to their own directory', () => {
  it('a gzip-wrapped qcow2 naming victim.raw does not read the victim beside the target (--untrusted)', (t) => {
    if (!requireQemu(t)) return;
    const up = backedUpload('backed.qcow2');
    gzip(up, `${up}.gz`);
    const out = join(targets, 'out1.raw');
    const r = vdisk(['convert', '--untrusted', '-O', 'raw', `${up}.gz`, out], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /victim\.raw/);
    assert.equal(leaks(out), false);
    assert.deepEqual(readdirSync(scratch), [], 'the private directory is gone');
  });

  it('a gzip-wrapped vmdk descriptor with a FLAT extent victim.raw does not read the victim', (t) => {
    if (!requireQemu(t)) return;
    const desc = flatDescriptor(join(dir.path, 'flat.vmdk'));
    gzip(desc, join(uploads, 'flat.vmdk.gz'));
    const out = join(targets, 'out2.raw');
    const r = vdisk(['convert', '--untrusted', '-O', 'raw', join(uploads, 'flat.vmdk.gz'), out], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(leaks(out), false);
  });

  it('a zip-wrapped qcow2 naming victim.raw does not read the victim either', (t) => {
    if (!requireQemu(t) || !hasZip) return;
    const up = backedUpload('zipped.qcow2');
    execFileSync('zip', ['-q', '-j', join(uploads, 'zipped.zip'), up]);
    const out = join(targets, 'out3.raw');
    const r = vdisk(['convert', '--untrusted', '-O', 'raw', join(uploads, 'zipped.zip'), out], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(leaks(out), false);
  });

  it('the references of an inflated upload resolve in the upload directory (a sibling backing file is found there)', (t) => {
    if (!requireQemu(t)) return;
    const d = join(dir.path, 'sib');
    mkdirSync(d);
    writeFileSync(join(d, 'base.raw'), new Uint8Array(1 << 20).fill(0x5a));
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', join(d, 'top.qcow2')]);
    gzip(join(d, 'top.qcow2'), join(d, 'top.qcow2.gz'));
    const out = join(targets, 'sib.raw');
    const r = vdisk(['convert', '--untrusted', '-O', 'raw', join(d, 'top.qcow2.gz'), out], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).every((b) => b === 0x5a));
  });
});

describe('ingest: inflation is capped and private', () => {
  it('--max-inflated-size stops a small gzip that inflates past it, leaving nothing behind', (t) => {
    if (!requireQemu(t)) return;
    const bomb = join(uploads, 'bomb.raw.gz');
    writeFileSync(bomb, gzipSync(new Uint8Array(16 << 20)));
    const out = join(targets, 'bomb.qcow2');
    const r = vdisk(['convert', '--max-inflated-size=1M', '-O', 'qcow2', bomb, out], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /inflates to more than 1048576 bytes/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(scratch), []);
    assert.deepEqual(readdirSync(targets).filter((f) => f.includes('vdisk')), [], 'no scratch file beside the target');
  });

  it('inflating 512 MiB of gzip streams: the process stays under 200 MiB', (t) => {
    if (!requireQemu(t) || !existsSync('/usr/bin/time')) return;
    const zeros = new Uint8Array(512 << 20);
    const gz = join(uploads, 'big.raw.gz');
    writeFileSync(gz, gzipSync(zeros, { level: 9 }));
    const r = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, VDISK_BIN, 'info', '--output=json', gz], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { 'virtual-size': number })['virtual-size'], 512 << 20);
    const kb = Number(/maxrss=(\d+)/.exec(r.stderr)?.[1]);
    assert.ok(kb > 0 && kb < 200 * 1024, `${kb} KiB`);
  });

  it('info, check and convert see the same inflated image', (t) => {
    if (!requireQemu(t)) return;
    const img = join(uploads, 'plain.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', img, '1M']);
    gzip(img, `${img}.gz`);
    const r = vdisk(['info', '--output=json', `${img}.gz`], { env });
    assert.equal(r.status, 0, r.stderr);
    const infoJson = JSON.parse(r.stdout) as { format: string; 'virtual-size': number; 'actual-size': number };
    assert.equal(infoJson.format, 'qcow2');
    assert.equal(infoJson['virtual-size'], 1 << 20);
    // The disk size is the upload's, as qemu-img reports it, not the private copy's.
    const theirs = JSON.parse(qemuImgOk(['info', '--output=json', `${img}.gz`])) as { 'actual-size': number };
    assert.equal(infoJson['actual-size'], theirs['actual-size']);
    const c = vdisk(['check', `${img}.gz`], { env });
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /No errors were found on the image/);
  });

  it('--no-unwrap reads a wrapped file as it is, like qemu-img', (t) => {
    if (!requireQemu(t)) return;
    const img = join(uploads, 'plain.qcow2.gz');
    if (!existsSync(img)) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', join(uploads, 'plain.qcow2'), '1M']);
      gzip(join(uploads, 'plain.qcow2'), img);
    }
    const theirs = JSON.parse(qemuImgOk(['info', '--output=json', img])) as { format: string };
    const ours = vdisk(['info', '--no-unwrap', '--output=json', img], { env });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal((JSON.parse(ours.stdout) as { format: string }).format, theirs.format);
  });
});

describe('ingest: zip entries vdisk cannot trust fail with typed errors', () => {
  function zipCase(name: string, zipArgs: string[], damage?: (b: Buffer) => void): string {
    const img = join(dir.path, `${name}.qcow2`);
    qemuImgOk(['create', '-q', '-f', 'qcow2', img, '1M']);
    const zip = join(uploads, `${name}.zip`);
    execFileSync('zip', ['-q', '-j', ...zipArgs, zip, img]);
    if (damage) {
      const b = readFileSync(zip);
      damage(b);
      writeFileSync(zip, b);
    }
    return zip;
  }

  const cases: Array<[string, string[], RegExp, ((b: Buffer) => void)?]> = [
    ['crc', ['-0'], /CRC mismatch/, (b) => {
      const at = b.indexOf('QFI\xfb', 0, 'latin1');
      b[at + 200] = (b[at + 200] ?? 0) ^ 0xff;
    }],
    ['zipcrypto', ['-P', 'secret'], /encrypted/],
    ['bzip2', ['-Z', 'bzip2'], /bzip2/],
  ];
  for (const [name, args, pattern, damage] of cases) {
    it(`${name}: convert and info fail with a clear error and write nothing`, (t) => {
      if (!requireQemu(t) || !hasZip) return;
      const zip = zipCase(name, args, damage);
      const out = join(targets, `${name}.raw`);
      for (const argv of [['convert', '-O', 'raw', zip, out], ['info', zip]]) {
        const r = vdisk(argv, { env });
        assert.equal(r.status, 1, `${argv[0]}: ${r.stderr}`);
        assert.match(r.stderr, pattern);
        assert.doesNotMatch(r.stderr, /internal error/);
      }
      assert.equal(existsSync(out), false);
    });
  }

  it('lzma: refused as unsupported, not an internal error', (t) => {
    if (!requireQemu(t)) return;
    const img = join(dir.path, 'lzma.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', img, '1M']);
    const zip = join(uploads, 'lzma.zip');
    const script = 'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_LZMA) as z: z.write(sys.argv[1], "lzma.qcow2")';
    execFileSync(SYSTEM_PYTHON, ['-c', script, img, zip]);
    const r = vdisk(['info', zip], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /lzma/i);
    assert.doesNotMatch(r.stderr, /internal error/);
  });
});
