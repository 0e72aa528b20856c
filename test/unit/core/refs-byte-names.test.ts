/** Names as bytes (core/byte-names.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { decodeName, encodeName, fsName, hasEscapes, replaceEscapes } from '../../../src/core/byte-names.js';
import { create, info } from '../../../src/index.js';

const bytes = (...b: number[]): Buffer => Buffer.from(b);

describe('names as bytes', () => {
  it('UTF-8 names decode to their ordinary strings, without escapes', () => {
    for (const s of ['a.qcow2', 'é.vmdk', '日本.img', '💀.raw', '']) {
      assert.equal(decodeName(Buffer.from(s)), s);
      assert.equal(hasEscapes(s), false);
      assert.equal(fsName(s), s);
      assert.ok(encodeName(s).equals(Buffer.from(s)));
    }
  });

  it('every byte string survives decode and encode exactly', () => {
    const cases = [
      bytes(0x61, 0xff, 0x2e),
      bytes(0xc3, 0xa9, 0xe2, 0x82, 0x2e),
      bytes(0xed, 0xa0, 0x80), // an encoded surrogate: not UTF-8
      bytes(0xe0, 0x80, 0x80), // overlong
      bytes(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF
      bytes(0xf0, 0x9f, 0x92, 0x80, 0x80), // a pair whose low half is U+DC80, then a stray byte
      bytes(0xc3),
    ];
    let seed = 7;
    for (let n = 0; n < 200; n++) {
      const b = Buffer.alloc(1 + (n % 9));
      for (let i = 0; i < b.length; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      cases.push(b);
    }
    for (const b of cases) {
      const name = decodeName(b);
      assert.ok(encodeName(name).equals(b), `${b.toString('hex')} -> ${JSON.stringify(name)}`);
      assert.equal(new TextDecoder().decode(b) === name, !hasEscapes(name), b.toString('hex'));
    }
    assert.equal(decodeName(bytes(0x61, 0xff)), 'a\udcff');
    assert.ok(Buffer.isBuffer(fsName('a\udcff')));
  });

  it('JSON shows each invalid sequence as one U+FFFD, as qemu does', () => {
    assert.equal(replaceEscapes(decodeName(bytes(0x61, 0xff, 0xfe))), 'a\ufffd\ufffd');
    assert.equal(replaceEscapes(decodeName(bytes(0xc3, 0xa9, 0xe2, 0x82, 0x2e))), 'é\ufffd.');
    assert.equal(replaceEscapes(decodeName(bytes(0xe0, 0x80, 0x80, 0x80))), '\ufffd\ufffd');
    assert.equal(replaceEscapes('💀'), '💀');
  });
});

it('SDK callers name files that are not UTF-8 with decodeName', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vdisk-refs-bytes-'));
  try {
    const base = decodeName(Buffer.concat([Buffer.from(`${dir}/b`), bytes(0xfe)]));
    const top = decodeName(Buffer.concat([Buffer.from(`${dir}/t`), bytes(0xff)]));
    await create(base, { format: 'qcow2', size: '1M' });
    await create(top, { format: 'qcow2', backingFile: base, options: 'backing_fmt=qcow2' });
    const names = readdirSync(dir, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort();
    assert.deepEqual(names, [Buffer.from('b\xfe', 'latin1').toString('hex'), Buffer.from('t\xff', 'latin1').toString('hex')]);
    const [image] = await info(top);
    assert.ok(encodeName(image?.backingFilename ?? '').equals(encodeName(base)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
