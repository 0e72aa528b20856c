/**
 * Differential: encrypted qcow2 (encrypt.format=luks and the legacy aes)
 * against qemu-img 7.2: reads, info, map, create, amend, and the crypto
 * header extension's bounds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-luks-qcow2-');
after(() => dir.cleanup());
const p = (name: string): string => join(dir.path, name);
const SECRETS = ['--object', 'secret,id=s0,data=pw', '--object', 'secret,id=s1,data=other'];
const opts = (file: string, secret = 's0'): string[] => ['--image-opts', `driver=qcow2,file.filename=${file},encrypt.key-secret=${secret}`];
const json = (file: string, secret = 's0'): string => `json:{"driver":"qcow2","encrypt.key-secret":"${secret}","file":{"driver":"file","filename":"${file}"}}`;

/** qemu-img create of an encrypted image (qemuImg retries qemu's PBKDF2 calibration flake). */
function qemuCreate(args: readonly string[]): void {
  qemuImgOk(['create', ...args]);
}

function qemuIoWrite(file: string, commands: readonly string[]): void {
  const r = spawnSync('qemu-io', [...SECRETS, ...opts(file), ...commands.flatMap((c) => ['-c', c])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

describe('qcow2 encryption: qemu-img writes, vdisk reads', () => {
  for (const format of ['luks', 'aes']) {
    it(`encrypt.format=${format}: data, info and map equal`, (t) => {
      if (!requireQemu(t)) return;
      const img = p(`q-${format}.qcow2`);
      const extra = format === 'luks' ? ',encrypt.iter-time=10' : '';
      qemuCreate(['-q', '-f', 'qcow2', ...SECRETS, '-o', `encrypt.format=${format},encrypt.key-secret=s0${extra}`, img, '4M']);
      qemuIoWrite(img, ['write -P 0xab 0 4096', 'write -P 0x11 70000 3000', 'write -P 0x5c 4000000 8192', 'write -z 131072 65536']);
      for (const args of [['info', '--output=json', img], ['info', img], ['map', '--output=json', ...SECRETS, ...opts(img)], ['convert', '-O', 'raw', img, p('x.raw')]]) {
        const q = qemuImg(args);
        const v = vdisk(args);
        assert.equal(v.stdout, q.stdout, args.join(' '));
        assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
      }
      qemuImgOk(['convert', ...SECRETS, ...opts(img), '-O', 'raw', p(`q-${format}.raw`)]);
      const r = vdisk(['convert', ...SECRETS, ...opts(img), '-O', 'raw', p(`v-${format}.raw`)]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readFileSync(p(`v-${format}.raw`)), readFileSync(p(`q-${format}.raw`)));
    });
  }
});

describe('qcow2 encryption: vdisk writes, qemu-img reads', () => {
  it('convert -O qcow2 -o encrypt.format=luks: compare and check pass in qemu-img; info equal to a qemu-made twin', (t) => {
    if (!requireQemu(t)) return;
    const raw = p('src.raw');
    const data = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 65536) data.fill((i >> 16) + 1, i + 100, i + 30000);
    writeFileSync(raw, data);
    const img = p('v.qcow2');
    const r = vdisk(['convert', ...SECRETS, '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv', raw, img]);
    assert.equal(r.status, 0, r.stderr);
    const c = qemuImg(['compare', ...SECRETS, '-f', 'raw', raw, json(img)]);
    assert.equal(c.status, 0, c.stdout + c.stderr);
    const k = qemuImg(['check', ...SECRETS, ...opts(img)]);
    assert.equal(k.status, 0, k.stdout + k.stderr);
    // vdisk writes into an image qemu-img made
    const q = p('q.qcow2');
    qemuCreate(['-q', '-f', 'qcow2', ...SECRETS, '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', q, '2M']);
    const n = vdisk(['convert', '-n', ...SECRETS, '-f', 'raw', raw, '--target-image-opts', `driver=qcow2,file.filename=${q},encrypt.key-secret=s0`]);
    assert.equal(n.status, 0, n.stderr);
    assert.equal(qemuImg(['compare', ...SECRETS, '-f', 'raw', raw, json(q)]).status, 0);
    // amend: a second passphrase that qemu-img accepts
    const a = vdisk(['amend', ...SECRETS, ...opts(q), '-o', 'encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(qemuImg(['compare', ...SECRETS, '-f', 'raw', raw, json(q, 's1')]).status, 0);
  });

  it('create encryption=on and the refusals read as qemu-img has them', (t) => {
    if (!requireQemu(t)) return;
    const img = p('aes.qcow2');
    assert.equal(vdisk(['create', '-q', '-f', 'qcow2', ...SECRETS, '-o', 'encryption=on,encrypt.key-secret=s0', img, '1M']).status, 0);
    assert.equal(vdisk(['info', '--output=json', img]).stdout, qemuImgOk(['info', '--output=json', img]));
    for (const args of [
      ['convert', '-c', ...SECRETS, '-O', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s0', img, p('c.qcow2')],
      ['create', '-f', 'qcow2', '-o', 'encrypt.format=luks', p('n.qcow2'), '1M'],
      ['amend', ...SECRETS, ...opts(img), '-o', 'encrypt.state=active,encrypt.new-secret=s1'],
    ]) {
      const q = qemuImg(args);
      const v = vdisk(args);
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
      assert.equal(v.status, q.status, args.join(' '));
    }
  });

  it('data vdisk writes into aes (IVs from guest sectors) and luks images reads back in qemu-img', (t) => {
    if (!requireQemu(t)) return;
    // the last write ends inside a sector; 4 KiB clusters make runs of several clusters; a zero stretch in the middle
    const src = p('aes-src.raw');
    const data = Buffer.alloc(4 * 1024 * 1024 - 24); // ends inside a sector
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 9)) & 0xff;
    data.fill(0, 65536, 2 * 65536);
    writeFileSync(src, data);
    const rawOpts = `driver=raw,file.filename=${src}`;
    for (const cluster of ['65536', '4096']) {
      // into an image qemu-img made and wrote into (in-place and fresh clusters), and into one vdisk creates
      const into = p(`aes-into-${cluster}.qcow2`);
      qemuCreate(['-q', '-f', 'qcow2', ...SECRETS, '-o', `encrypt.format=aes,encrypt.key-secret=s0,cluster_size=${cluster}`, into, String(data.length)]);
      qemuIoWrite(into, ['write -P 0x11 0 64k', 'write -P 0x22 128k 8k', 'write -P 0x33 192k 4k']);
      const n = vdisk(['convert', '-n', ...SECRETS, '-f', 'raw', src, '--target-image-opts', `driver=qcow2,file.filename=${into},encrypt.key-secret=s0`]);
      assert.equal(n.status, 0, n.stderr);
      // (luks too: a partial last sector is read, changed and written while the cluster's first write may still be landing)
      const made = [['aes', ''], ['luks', ',encrypt.iter-time=10']].map(([format, extra]) => {
        const img = p(`${format}-made-${cluster}.qcow2`);
        const c = vdisk(['convert', ...SECRETS, '-f', 'raw', '-O', 'qcow2', '-o', `encrypt.format=${format},encrypt.key-secret=s0,cluster_size=${cluster}${extra}`, src, img]);
        assert.equal(c.status, 0, c.stderr);
        return img;
      });
      for (const img of [into, ...made]) {
        const q = `driver=qcow2,file.filename=${img},encrypt.key-secret=s0`;
        const cmp = qemuImg(['compare', ...SECRETS, '--image-opts', rawOpts, q]);
        assert.match(cmp.stdout, /Images are identical/, `${img}: ${cmp.stdout}${cmp.stderr}`);
        const chk = qemuImg(['check', ...SECRETS, '--image-opts', q]);
        assert.equal(chk.status, 0, chk.stdout + chk.stderr);
      }
    }
  });

  it('a crypto header extension pointing outside the file is refused', (t) => {
    if (!requireQemu(t)) return;
    const img = p('bad.qcow2');
    qemuCreate(['-q', '-f', 'qcow2', ...SECRETS, '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', img, '1M']);
    const bytes = readFileSync(img);
    const ext = bytes.indexOf(Buffer.from([0x05, 0x37, 0xbe, 0x77]));
    assert.ok(ext > 0);
    bytes.writeBigUInt64BE(1n << 40n, ext + 8 + 8); // length
    writeFileSync(img, bytes);
    const r = vdisk(['info', img]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Encryption header \(offset \d+, length 1099511627776\) lies outside the image file/);
  });
});
