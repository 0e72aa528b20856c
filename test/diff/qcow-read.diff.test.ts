/**
 * qcow (v1) images qemu-img writes, read by vdisk: plain, compressed
 * (`convert -c`), AES-encrypted (with the key from a secret), backed by
 * another qcow, and odd sizes. Guest data must read back byte-identical,
 * `info` (human and JSON) and `map --output=json` must equal qemu-img's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qcow-read-');
after(() => dir.cleanup());
const M = 1024 * 1024;
const SECRET = ['--object', 'secret,id=s0,data=pw'];
const ENC = (name: string): string[] => [...SECRET, '--image-opts', `driver=qcow,file.filename=${name},encrypt.key-secret=s0`];

/** A 3 MiB raw source: random data, a hole, a short run, data at the very end. */
function source(): Buffer {
  const buf = Buffer.alloc(3 * M);
  let x = 4242;
  for (let i = 0; i < 200 * 1024; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
  buf.fill(0x42, M + 100, M + 3100);
  buf.fill(0x43, 3 * M - 5000);
  return buf;
}

/** qemu-io with options (secrets) that the helper's qemuIo does not take. */
function qemuIoRaw(args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('qemu-io', args, { encoding: 'utf8' });
}

/** Images qemu-img makes, as [name, open args] (args name the image the way info/map/convert take it). */
const IMAGES: [string, string[]][] = [
  ['plain.qcow', ['plain.qcow']],
  ['comp.qcow', ['comp.qcow']],
  ['enc.qcow', ENC('enc.qcow')],
  ['top.qcow', ['top.qcow']],
  ['enctop.qcow', ENC('enctop.qcow')],
  ['odd.qcow', ['odd.qcow']],
];

describe('qcow images qemu-img writes read back in vdisk as in qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    writeFileSync(join(dir.path, 'src.raw'), source());
    const q = (args: string[]): string => qemuImgOk(args, { cwd: dir.path });
    q(['convert', '-O', 'qcow', 'src.raw', 'plain.qcow']);
    // qemu-img 7.2 writes the whole image, then exits 1 without a message: its final zero-length
    // compressed write (convert's "signal EOF to align") is refused by qcow's compressed writer
    assert.equal(qemuImg(['convert', '-c', '-O', 'qcow', 'src.raw', 'comp.qcow'], { cwd: dir.path }).stderr, '');
    q(['convert', ...SECRET, '-O', 'qcow', '-o', 'encrypt.format=aes,encrypt.key-secret=s0', 'src.raw', 'enc.qcow']);
    q(['create', '-f', 'qcow', '-b', 'comp.qcow', '-F', 'qcow', 'top.qcow']);
    qemuIo(join(dir.path, 'top.qcow'), ['write -P 0x55 4096 1000', 'write -P 0x66 600k 10k', 'write -P 0x77 3140000 4000']);
    q(['create', '-f', 'qcow', ...SECRET, '-o', 'encryption=on,encrypt.key-secret=s0', '-b', 'plain.qcow', '-F', 'qcow', 'enctop.qcow']);
    const enctop = qemuIoRaw([...SECRET, '-c', 'write -P 0x88 100 3000', '-c', 'write -P 0x99 2M 70k', '--image-opts', `driver=qcow,file.filename=${join(dir.path, 'enctop.qcow')},encrypt.key-secret=s0`]);
    assert.equal(enctop.status, 0, String(enctop.stderr));
    // a size that is not whole sectors: qemu-img rounds it up at create
    q(['create', '-f', 'qcow', 'odd.qcow', '100000']);
    qemuIo(join(dir.path, 'odd.qcow'), ['write -P 0x21 99000 1000']);
  });

  for (const [name, args] of IMAGES) {
    it(`${name}: guest data byte-identical`, (t) => {
      if (!requireQemu(t)) return;
      qemuImgOk(['convert', ...args.slice(0, -1), '-O', 'raw', args.at(-1) as string, `q-${name}.raw`], { cwd: dir.path });
      const ours = vdisk(['convert', ...args.slice(0, -1), '-O', 'raw', args.at(-1) as string, `v-${name}.raw`], { cwd: dir.path });
      assert.equal(ours.status, 0, ours.stderr);
      assert.ok(readFileSync(join(dir.path, `v-${name}.raw`)).equals(readFileSync(join(dir.path, `q-${name}.raw`))));
    });

    it(`${name}: info (human, JSON) and map JSON equal qemu-img's`, (t) => {
      if (!requireQemu(t)) return;
      for (const cmd of [['info'], ['info', '--output=json'], ['map', '--output=json']]) {
        const theirs = qemuImg([...cmd, ...args], { cwd: dir.path });
        const ours = vdisk([...cmd, ...args], { cwd: dir.path });
        assert.equal(ours.status, theirs.status, `${cmd.join(' ')}: ${ours.stderr}`);
        assert.equal(ours.stdout, theirs.stdout, cmd.join(' '));
      }
    });
  }

  it('an encrypted image: info needs no key; reading without one fails as in qemu-img', (t) => {
    if (!requireQemu(t)) return;
    for (const cmd of [['info', 'enc.qcow'], ['map', 'enc.qcow'], ['convert', '-O', 'raw', 'enc.qcow', 'x.raw'], ['check', 'enc.qcow']]) {
      const theirs = qemuImg(cmd, { cwd: dir.path });
      const ours = vdisk(cmd, { cwd: dir.path });
      assert.equal(ours.status, theirs.status, cmd.join(' '));
      assert.equal(ours.stdout, theirs.stdout, cmd.join(' '));
      assert.equal(ours.stderr, asVdisk(theirs.stderr), cmd.join(' '));
    }
  });

  it('encrypt.* open options are checked as qemu-img checks them', (t) => {
    if (!requireQemu(t)) return;
    for (const opts of ['encrypt.format=luks', 'encrypt.foo=1', 'encrypt.key-secret=nope']) {
      for (const name of ['enc.qcow', 'plain.qcow']) {
        const cmd = [...SECRET, '--image-opts', `driver=qcow,file.filename=${name},${opts}`];
        for (const c of [['info', ...cmd], ['map', ...cmd]]) {
          const theirs = qemuImg(c, { cwd: dir.path });
          const ours = vdisk(c, { cwd: dir.path });
          assert.equal(ours.status, theirs.status, c.join(' '));
          assert.equal(ours.stderr, asVdisk(theirs.stderr), c.join(' '));
        }
      }
    }
  });
});
