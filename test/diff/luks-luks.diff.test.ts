/**
 * Differential: the luks driver against qemu-img 7.2. Images qemu-img
 * writes read back byte-identical and describe identically; images vdisk
 * writes open in qemu-img with the same secret (and in cryptsetup when it
 * is installed); keyslot amend, messages, and the PBKDF2 cap.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-luks-');
after(() => dir.cleanup());
const p = (name: string): string => join(dir.path, name);
const SECRET = ['--object', 'secret,id=s0,data=pw'];
const opts = (file: string, secret = 's0'): string[] => ['--image-opts', `driver=luks,file.filename=${file},key-secret=${secret}`];
const hasCryptsetup = spawnSync('cryptsetup', ['--version']).status === 0;

/** qemu-img create of an encrypted image (qemuImg retries qemu's PBKDF2 calibration flake). */
function qemuCreate(args: readonly string[]): void {
  qemuImgOk(['create', ...args]);
}

function qemuIoWrite(file: string, commands: readonly string[]): void {
  const r = spawnSync('qemu-io', [...SECRET, ...opts(file), ...commands.flatMap((c) => ['-c', c])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function both(args: readonly string[]): { q: ReturnType<typeof qemuImg>; v: ReturnType<typeof vdisk> } {
  return { q: qemuImg(args), v: vdisk(args) };
}

describe('luks: qemu-img writes, vdisk reads', () => {
  const variants = [
    'cipher-mode=xts',
    'cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1',
    'cipher-alg=aes-128,cipher-mode=ctr,ivgen-alg=plain,hash-alg=ripemd160',
  ];
  for (const [i, variant] of variants.entries()) {
    it(`${variant}: data and info equal`, (t) => {
      if (!requireQemu(t)) return;
      const img = p(`q${i}.luks`);
      qemuCreate(['-q', '-f', 'luks', ...SECRET, '-o', `key-secret=s0,iter-time=10,${variant}`, img, '1M']);
      qemuIoWrite(img, ['write -P 0xab 0 4096', 'write -P 0x11 8192 512', 'write -P 0x5c 1040384 8192']);
      for (const args of [['info', '--output=json', img], ['info', img]]) {
        const { q, v } = both(args);
        assert.equal(v.stdout, q.stdout, args.join(' '));
      }
      qemuImgOk(['convert', ...SECRET, ...opts(img), '-O', 'raw', p(`q${i}.raw`)]);
      const r = vdisk(['convert', ...SECRET, ...opts(img), '-O', 'raw', p(`v${i}.raw`)]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readFileSync(p(`v${i}.raw`)), readFileSync(p(`q${i}.raw`)));
    });
  }

  it('wrong password, missing key-secret and the opaque map are as qemu-img has them', (t) => {
    if (!requireQemu(t)) return;
    const img = p('msg.luks');
    qemuCreate(['-q', '-f', 'luks', ...SECRET, '-o', 'key-secret=s0,iter-time=10', img, '1M']);
    for (const args of [
      ['convert', '--object', 'secret,id=s0,data=bad', ...opts(img), '-O', 'raw', p('x.raw')],
      ['convert', '-O', 'raw', img, p('x.raw')],
      ['map', '--output=json', ...SECRET, ...opts(img)],
      ['amend', ...SECRET, ...opts(img), '-o', 'state=inactive,keyslot=0'],
      ['amend', ...SECRET, ...opts(img), '-o', 'state=active'],
      ['amend', ...SECRET, ...opts(img), '-o', 'new-secret=s0'],
      ['amend', ...SECRET, ...opts(img), '-o', 'state=inactive,keyslot=3'],
    ]) {
      const { q, v } = both(args);
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
      assert.equal(v.stdout, q.stdout, args.join(' '));
      assert.equal(v.status, q.status, args.join(' '));
    }
  });
});

describe('luks: vdisk writes, qemu-img reads', () => {
  it('convert -O luks: qemu-img compare with the same secret, cryptsetup reads the header', (t) => {
    if (!requireQemu(t)) return;
    const raw = p('src.raw');
    const data = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.fill((i / 4096) % 251, i, i + 1000);
    writeFileSync(raw, data);
    for (const [i, variant] of ['cipher-mode=xts', 'cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv'].entries()) {
      const img = p(`v${i}.luks`);
      const r = vdisk(['convert', ...SECRET, '-O', 'luks', '-o', `key-secret=s0,iter-time=10,${variant}`, raw, img]);
      assert.equal(r.status, 0, r.stderr);
      const c = qemuImg(['compare', ...SECRET, '-f', 'raw', raw, `json:{"driver":"luks","key-secret":"s0","file":{"driver":"file","filename":"${img}"}}`]);
      assert.equal(c.status, 0, c.stdout + c.stderr);
      const q = JSON.parse(qemuImgOk(['info', '--output=json', img])) as { 'format-specific': { data: { slots: { active: boolean; iters?: number }[]; 'master-key-iters': number } } };
      assert.equal(q['format-specific'].data.slots[0]?.active, true);
      assert.ok((q['format-specific'].data.slots[0]?.iters ?? 0) >= 1000 && q['format-specific'].data['master-key-iters'] >= 1000);
      if (hasCryptsetup) {
        const d = spawnSync('cryptsetup', ['luksDump', img], { encoding: 'utf8' });
        assert.equal(d.status, 0, d.stderr);
        assert.match(d.stdout, /Key Slot 0: ENABLED/);
        const test = spawnSync('cryptsetup', ['luksOpen', '--test-passphrase', '--key-file=-', img], { input: 'pw', encoding: 'utf8' });
        assert.equal(test.status, 0, test.stderr);
      }
    }
  });

  it('amend adds and erases keyslots as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const img = p('am.luks');
    const secrets = [...SECRET, '--object', 'secret,id=s1,data=other'];
    assert.equal(vdisk(['create', '-q', '-f', 'luks', ...SECRET, '-o', 'key-secret=s0,iter-time=10', img, '1M']).status, 0);
    let r = vdisk(['amend', ...secrets, ...opts(img), '-o', 'state=active,new-secret=s1,iter-time=10']);
    assert.equal(r.status, 0, r.stderr);
    // qemu-img opens with the new passphrase, and erases the old one
    qemuImgOk(['amend', ...secrets, ...opts(img, 's1'), '-o', 'state=inactive,old-secret=s0']);
    r = vdisk(['convert', ...secrets, ...opts(img), '-O', 'raw', p('am.raw')]);
    assert.equal(r.stderr, "vdisk: Could not open 'driver=luks,file.filename=" + img + ",key-secret=s0': Invalid password, cannot unlock any keyslot\n");
    const args = ['amend', ...secrets, ...opts(img, 's1'), '-o', 'state=inactive,old-secret=s1'];
    const v = vdisk(args);
    assert.equal(v.stderr, asVdisk(qemuImg(args).stderr));
    assert.equal(v.status, 1);
  });
});

describe('luks: hostile headers', () => {
  it('a keyslot asking for 2^31 PBKDF2 iterations is refused before any derivation', (t) => {
    if (!requireQemu(t)) return;
    const img = p('hostile.luks');
    qemuCreate(['-q', '-f', 'luks', ...SECRET, '-o', 'key-secret=s0,iter-time=10', img, '1M']);
    const bytes = readFileSync(img);
    bytes.writeUInt32BE(2 ** 31, 208 + 4); // slot 0 iterations
    writeFileSync(img, bytes);
    const r = vdisk(['convert', ...SECRET, ...opts(img), '-O', 'raw', p('h.raw')], { timeoutMs: 20_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /keyslot 0 asks for 2147483648 PBKDF2 iterations, more than the 16777216 allowed/);
    // the cap is configurable: a lower one refuses the ordinary master-key count too
    const low = vdisk(['info', '--max-pbkdf2-iterations=10', img]);
    assert.equal(low.status, 0, 'info needs no key, so no derivation');
    const c = vdisk(['convert', '--max-pbkdf2-iterations=999', ...SECRET, ...opts(img), '-O', 'raw', p('h.raw')]);
    assert.match(c.stderr, /master key digest asks for \d+ PBKDF2 iterations, more than the 999 allowed/);
  });
});
