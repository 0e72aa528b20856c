/**
 * Differential: a LUKS header qemu-img made, changed field by field (and
 * two or three fields at once, to pin the order of the checks), opened by
 * `info` in both tools: the same verdict, word for word. Covers what
 * qcrypto_block_luks_check_header refuses (names not NUL-terminated, the
 * payload over the header, zero iteration counts, each slot's stripes,
 * state, count and layout, slot by slot) and how the header's names are
 * understood (the mode string, its IV hash, the cipher for the key size
 * with XTS halving it, the hash, the IV generator, the ESSIV cipher).
 * Found by the LUKS fuzz test: a zero count reached PBKDF2 as a RangeError.
 *
 * Also here: a JSON name with a character qemu's byte lexer does not take
 * reports its first byte alone, and a bad `\u` escape is quoted with the
 * four bytes after it, as qemu-img prints them (found by the JSON name fuzz
 * test with other seeds).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { VDISK_BIN } from '../helpers/cli.js';
import { hasQemu, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s10-luks-');
after(() => dir.cleanup());
const base = join(dir.path, 'base.luks');
const image = join(dir.path, 'm.luks');

before(() => {
  if (!hasQemu) return;
  qemuImgOk(['create', '-q', '-f', 'luks', '--object', 'secret,id=s0,data=pw', '-o', 'key-secret=s0,iter-time=10', base, '1M']);
});

const SLOTS = 208;
const SLOT = 48;
type Edit = (b: Buffer) => void;
const u32 = (at: number, value: number): Edit => (b) => b.writeUInt32BE(value >>> 0, at);
const name = (at: number, text: string): Edit => (b) => {
  b.fill(0, at, at + 32);
  b.write(text, at, 'latin1');
};
const unterminated = (at: number, c: string): Edit => (b) => b.fill(c, at, at + 32);

const EDITS: Readonly<Record<string, Edit>> = {
  mkZero: u32(164, 0),
  payload1: u32(104, 1),
  payload9: u32(104, 9),
  keyBytes0: u32(108, 0),
  slot0Stripes: u32(SLOTS + 44, 3999),
  slot0Zero: u32(SLOTS + 4, 0),
  slot0State: u32(SLOTS, 0x12345678),
  slot0Header: u32(SLOTS + 40, 1),
  slot0Payload: u32(SLOTS + 40, 100_000),
  slot1State: u32(SLOTS + SLOT, 0x12345678),
  slot1Stripes: u32(SLOTS + SLOT + 44, 3999),
  slot1ZeroInactive: u32(SLOTS + SLOT + 4, 0),
  version2: u32(4, 0xbabe0002),
  cipherNoNul: unterminated(8, 'a'),
  modeNoNul: unterminated(40, 'b'),
  hashNoNul: unterminated(72, 'c'),
};

/** Header cases: edits applied in order (later ones win on the same bytes). */
const HEADER_CASES = [
  'mkZero', 'slot0Zero', 'slot1ZeroInactive', 'mkZero+payload1', 'mkZero+slot0Stripes', 'mkZero+slot0State', 'mkZero+keyBytes0',
  'slot0Zero+slot0Stripes', 'slot0Zero+slot0State', 'slot0Zero+slot0Header', 'slot0Zero+slot1State', 'slot0Stripes+slot0State',
  'slot0Payload+slot1State', 'slot0Payload+slot1Stripes', 'slot0Header+payload9', 'slot0Header+slot1State', 'slot0Stripes+slot0Header',
  'cipherNoNul', 'modeNoNul', 'hashNoNul', 'cipherNoNul+payload1', 'cipherNoNul+modeNoNul', 'modeNoNul+hashNoNul', 'mkZero+cipherNoNul',
  'version2+cipherNoNul', 'keyBytes0', 'keyBytes0+slot0Stripes',
];

/** Name cases: cipher name, mode string, hash spec, key bytes (what is not given stays qemu-img's). */
const NAME_CASES: readonly { name?: string; mode?: string; hash?: string; kb?: number }[] = [
  { mode: 'xyz' }, { mode: 'xts' }, { mode: 'xyz-plain64:bad' }, { mode: 'xyz-plain64' }, { mode: 'xts-bogus', hash: 'bad' },
  { mode: 'cbc-essiv', hash: 'bad' }, { mode: 'cbc-essiv' }, { mode: 'cbc-essiv:sha256', kb: 32 }, { mode: 'cbc-essiv:sha1', kb: 32 },
  { mode: 'cbc-essiv:md5', kb: 32 }, { mode: 'cbc-essiv:sha512', kb: 32 }, { mode: 'cbc-essiv:ripemd160', kb: 32 },
  { mode: 'cbc-plain64:bad', kb: 32 }, { mode: 'cbc-plain64:sha1', kb: 32 }, { mode: 'xts-bogus' }, { mode: 'cbc-bogus:sha256', kb: 32 },
  { mode: 'cbc-essiv:sha1', name: 'serpent', kb: 32 }, { mode: 'cbc-essiv:sha1', name: 'twofish', kb: 32 },
  { mode: 'cbc-essiv:sha256', name: 'cast5', kb: 16 }, { mode: 'cbc-essiv:md5', name: 'cast5', kb: 16 },
  { mode: 'cbc-plain64', name: 'des3_ede', kb: 24 }, { mode: 'cbc-plain64', kb: 20 }, { mode: 'cbc-plain64', name: 'aes', kb: 24 },
  { name: 'bogus' }, { hash: 'md5' }, { hash: 'sha224' }, { mode: '-plain64', kb: 32 }, { mode: 'cbc-', kb: 32 }, { mode: 'cbc-essiv:', kb: 32 },
  { kb: 0 }, { kb: 1 }, { kb: 63 }, { kb: 65 },
];

function run(cmd: string, args: readonly string[]): { status: number | null; first: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const line = `${r.stdout}${r.stderr}`.split('\n')[0] ?? '';
  return { status: r.status, first: line.replace(/^(qemu-img|vdisk): /, '') };
}

function sameVerdict(label: string): void {
  const q = run('qemu-img', ['info', image]);
  const v = run(process.execPath, [VDISK_BIN, 'info', image]);
  assert.deepEqual(v, q, label);
}

describe('luks header checks and names, in qemu-img 7.2 order and words', () => {
  it('changed header fields get the same verdict', (t) => {
    if (!requireQemu(t)) return;
    for (const c of HEADER_CASES) {
      const b = readFileSync(base);
      for (const e of c.split('+')) (EDITS[e] as Edit)(b);
      writeFileSync(image, b);
      sameVerdict(c);
    }
  });

  it('changed names and key sizes get the same verdict', (t) => {
    if (!requireQemu(t)) return;
    for (const c of NAME_CASES) {
      const b = readFileSync(base);
      if (c.name !== undefined) name(8, c.name)(b);
      if (c.mode !== undefined) name(40, c.mode)(b);
      if (c.hash !== undefined) name(72, c.hash)(b);
      if (c.kb !== undefined) u32(108, c.kb)(b);
      writeFileSync(image, b);
      sameVerdict(JSON.stringify(c));
    }
  });
});

describe('JSON names: bytes, not characters', () => {
  it('a stray character is reported as its first byte, a bad escape with its four bytes, as qemu-img prints them', (t) => {
    if (!requireQemu(t)) return;
    // a number broken by a non-ASCII character quotes that character's first byte; a stray closing bracket inside an
    // object ends the message there (qemu's streamer counts braces and brackets apart);
    // and a bad \u escape is quoted with the four bytes after it, not four characters
    for (const text of ['json:{"driver":"qcow2",é"x":1}', 'json:{é}', 'json:😀', 'json:{"a":1}ß', 'json:{"a":"\\ud8é3"}', 'json:{"a":"\\u1😀"}', 'json:{"a":"\\u€12"}', 'json:{"a":"\\u12"}', 'json:{"c":-0.5eé3}', 'json:{"c":1.é}', 'json:{"c":0.5e+😀}', 'json:{"driver":"qcow2","file":{"driver"file","]ilename":"x.qcow2"}}', 'json:{"a":[1,2}]', 'json:[{]}', 'json:]{"a":1}', 'json:[[]]]']) {
      const q = spawnSync('qemu-img', ['info', text]);
      const v = spawnSync(process.execPath, [VDISK_BIN, 'info', text]);
      assert.equal(v.status, q.status, text);
      assert.deepEqual(v.stderr, Buffer.from(q.stderr.toString('latin1').replace(/^qemu-img:/, 'vdisk:'), 'latin1'), text);
    }
  });
});
