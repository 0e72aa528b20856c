/**
 * The LZFSE decoder (src/core/lzfse.ts) on vectors built by hand from the
 * format's description (a stored block, an LZVN block with every opcode
 * class, a bvx1 and a bvx2 block with hand-made FSE tables and bits), on
 * round trips through the test encoder (every block kind, matches across
 * blocks), and on hostile streams, each refused with a CorruptImageError
 * naming what was wrong.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CorruptImageError } from '../../src/core/errors.js';
import { decodeLzfse } from '../../src/core/lzfse.js';
import { concatBytes, endBlock, rawBlock } from '../helpers/lzfse-encode.js';
import { type BlockKind, encodeLzfse, fseBlock, packedFreqs } from '../helpers/lzfse-fse-encode.js';
import { pattern } from '../helpers/ro-images.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const lzvn = (raw: number, payload: readonly number[]): Uint8Array => concatBytes([text('bvxn'), u32(raw), u32(payload.length), payload]);
const EOS = [0x06, 0, 0, 0, 0, 0, 0, 0];

function refused(stream: Uint8Array, size: number, what: RegExp): void {
  assert.throws(
    () => decodeLzfse(stream, size),
    (err: unknown) => err instanceof CorruptImageError && what.test(err.message),
  );
}

/** LZ semantics spelt out: append literals, copy `m` bytes from `d` back one at a time. */
class Expect {
  readonly bytes: number[] = [];
  lit(s: string): this {
    for (const c of s) this.bytes.push(c.charCodeAt(0));
    return this;
  }
  match(m: number, d: number): this {
    for (let i = 0; i < m; i++) this.bytes.push(this.bytes[this.bytes.length - d] as number);
    return this;
  }
}

/** Every LZVN opcode class, with the output each step adds. */
const LZVN_OPS = [
  0xe5, ...text('abcde'), // sml_l: 5 literals
  0xe0, 4, ...text('ABCDEFGHIJKLMNOPQRST'), // lrg_l: 16 + 4 literals
  0x48, 5, ...text('x'), // sml_d: L 1, M 4, D 5
  0xb4, 0x29, 0x00, ...text('yz'), // med_d: L 2, M 3 + (4 << 2 | 1) = 20, D 41 >> 2 = 10
  0xc7, 30, 0, ...text('pqr'), // lrg_d: L 3, M 3, D 30
  0x56, ...text('w'), // pre_d: L 1, M 5, D 30 again
  0xf7, // sml_m: M 7, D 30
  0xf0, 4, // lrg_m: M 20, D 30
  0x0e, 0x16, // nops
  0x38, 1, // sml_d: L 0, M 10, D 1 (a run of the last byte)
  ...EOS,
];
const LZVN_OUT = new Expect().lit('abcde').lit('ABCDEFGHIJKLMNOPQRST').lit('x').match(4, 5).lit('yz').match(20, 10).lit('pqr').match(3, 30).lit('w').match(5, 30).match(7, 30).match(20, 30).match(10, 1).bytes;

/**
 * One entropy-coded block by hand. Literals: 'a' and 'b' 512 states each
 * (1 bit per state), lanes starting in states 0, 512, 1, 513 → "abab",
 * reading bits 1 0 1 1. Triples (L, M, D) = (4, 20, 2) then (0, 5, repeat):
 * L symbols 0 and 4, M symbols 5 and 16 (base 16 + 3 extra bits), D symbols
 * 0 and 2, two symbols of equal frequency per table, so each state reads 1
 * bit. Bits in reading order: L 1, M 1 100, D 0, L 0, M 0, D 1 = 0x1c1.
 */
const FSE_OUT = new Expect().lit('abab').match(20, 2).match(5, 2).bytes;
function handFreqs(): number[] {
  const f = new Array<number>(360).fill(0);
  f[0] = 32; // L 0
  f[4] = 32; // L 4
  f[20 + 5] = 32; // M 5
  f[20 + 16] = 32; // M 16..23
  f[40 + 0] = 128; // D repeat
  f[40 + 2] = 128; // D 2
  f[104 + 0x61] = 512;
  f[104 + 0x62] = 512;
  return f;
}
const HAND = { raw: FSE_OUT.length, literals: 4, matches: 2, litPayload: [0x0b], litBits: -4, litStates: [0, 512, 1, 513], lmdPayload: [0, 0, 0, 0, 0, 0, 0xc1, 0x01], lmdBits: -7, states: [32, 40, 133] };

function handV1(): Uint8Array {
  const h = new DataView(new ArrayBuffer(772));
  [0x31787662, HAND.raw, 9, HAND.literals, HAND.matches, 1, 8].forEach((x, i) => h.setUint32(4 * i, x, true));
  h.setInt32(28, HAND.litBits, true);
  HAND.litStates.forEach((s, i) => h.setUint16(32 + 2 * i, s, true));
  h.setInt32(40, HAND.lmdBits, true);
  HAND.states.forEach((s, i) => h.setUint16(44 + 2 * i, s, true));
  handFreqs().forEach((x, i) => h.setUint16(50 + 2 * i, x, true));
  return concatBytes([new Uint8Array(h.buffer), HAND.litPayload, HAND.lmdPayload]);
}

function handV2(): Uint8Array {
  const tables = packedFreqs(handFreqs());
  const h = new DataView(new ArrayBuffer(32));
  const [s0, s1, s2, s3] = HAND.litStates.map(BigInt) as [bigint, bigint, bigint, bigint];
  const [l, m, d] = HAND.states.map(BigInt) as [bigint, bigint, bigint];
  h.setUint32(0, 0x32787662, true);
  h.setUint32(4, HAND.raw, true);
  h.setBigUint64(8, 4n | (1n << 20n) | (2n << 40n) | (BigInt(HAND.litBits + 7) << 60n), true);
  h.setBigUint64(16, s0 | (s1 << 10n) | (s2 << 20n) | (s3 << 30n) | (8n << 40n) | (BigInt(HAND.lmdBits + 7) << 60n), true);
  h.setBigUint64(24, BigInt(32 + tables.length) | (l << 32n) | (m << 42n) | (d << 52n), true);
  return concatBytes([new Uint8Array(h.buffer), tables, HAND.litPayload, HAND.lmdPayload]);
}

describe('lzfse: hand-built vectors', () => {
  it("a stored 'bvx-' block, then the end marker (trailing bytes ignored)", () => {
    const s = concatBytes([text('bvx-'), u32(5), text('hello'), text('bvx$'), [1, 2, 3]]);
    assert.deepEqual(decodeLzfse(s, 5), text('hello'));
  });

  it("an empty stream: just 'bvx$'", () => {
    assert.deepEqual(decodeLzfse(text('bvx$'), 0), new Uint8Array(0));
  });

  it('an LZVN block with every opcode class', () => {
    assert.deepEqual([...decodeLzfse(concatBytes([lzvn(LZVN_OUT.length, LZVN_OPS), endBlock()]), LZVN_OUT.length)], LZVN_OUT);
  });

  it('bvx1 and bvx2 blocks with hand-made tables and bits', () => {
    assert.deepEqual([...decodeLzfse(concatBytes([handV1(), endBlock()]), FSE_OUT.length)], FSE_OUT);
    assert.deepEqual([...decodeLzfse(concatBytes([handV2(), endBlock()]), FSE_OUT.length)], FSE_OUT);
  });

  it('matches reach back into earlier blocks', () => {
    // a stored "hello", then an LZVN match of 10 from 5 back: "hellohellohello"
    const s = concatBytes([rawBlock(text('hello')), lzvn(10, [0x38, 5, ...EOS]), endBlock()]);
    assert.deepEqual(decodeLzfse(s, 15), text('hellohellohello'));
  });
});

describe('lzfse: round trips through the test encoder', () => {
  const mixed = (() => {
    const a = pattern(300 * 1024, 5);
    // runs, text-like stretches and repeats far back (distances past 64 KiB)
    a.fill(0x41, 1000, 9000);
    for (let i = 20000; i < 60000; i++) a[i] = 0x61 + ((i * i) % 7);
    a.copyWithin(200 * 1024, 10 * 1024, 90 * 1024);
    return a;
  })();
  const inputs: Record<string, Uint8Array> = { mixed, zeros: new Uint8Array(70000), tiny: text('abc'), text: text('the quick brown fox jumps over the lazy dog; '.repeat(900)) };
  const kinds: BlockKind[][] = [['v2'], ['v1'], ['lzvn'], ['raw'], ['v2', 'lzvn', 'raw', 'v1']];
  for (const [name, data] of Object.entries(inputs)) {
    it(`${name}: every block kind, alone and mixed`, () => {
      for (const k of kinds) assert.deepEqual(decodeLzfse(encodeLzfse(data, k, 48 * 1024), data.length), data, k.join('+'));
    });
  }
});

describe('lzfse: hostile streams are refused, typed', () => {
  const data = pattern(20000, 2);
  const v2 = concatBytes([fseBlock(data, 0, data.length), endBlock()]);

  it('bad magic, truncation, no end marker', () => {
    refused(text('bvxZ\0\0\0\0'), 0, /unknown block magic 0x5a787662/);
    refused(new Uint8Array(0), 0, /ends without its end-of-stream block/);
    refused(rawBlock(text('hello')), 5, /ends without its end-of-stream block/);
    refused(concatBytes([text('bvx-'), u32(50), text('hello'), endBlock()]), 50, /stored block runs past the end of the input/);
    refused(v2.subarray(0, 20), data.length, /block header truncated/);
    refused(concatBytes([v2.subarray(0, 200), endBlock()]), data.length, /runs past the end of the input/);
  });

  it("n_raw_bytes past the chunk's declared output, or output short of it", () => {
    refused(v2, data.length - 1, /overruns the 19999 bytes left of the output/);
    refused(concatBytes([text('bvx-'), u32(0xffffffff), endBlock()]), 4096, /block of 4294967295 bytes overruns/);
    refused(concatBytes([rawBlock(text('hello')), endBlock()]), 6, /decodes to 5 bytes, not 6/);
  });

  it('LZVN: undefined opcodes, distances before the start or 0, truncation, eos misplaced', () => {
    refused(concatBytes([lzvn(3, [0x70, ...EOS]), endBlock()]), 3, /undefined lzvn opcode 0x70/);
    refused(concatBytes([lzvn(3, [0x1e, ...EOS]), endBlock()]), 3, /undefined lzvn opcode 0x1e/);
    refused(concatBytes([lzvn(5, [0x48, 5, 0x61, ...EOS]), endBlock()]), 5, /lzvn match distance 5 at output byte 1/);
    refused(concatBytes([lzvn(4, [0xe1, 0x61, 0xf3, ...EOS]), endBlock()]), 4, /lzvn match distance 0/);
    refused(concatBytes([lzvn(5, [0xe5, 0x61]), endBlock()]), 5, /lzvn literal runs past the end of its block/);
    refused(concatBytes([lzvn(1, [0xe1, 0x61, 0x06, 0, 0]), endBlock()]), 1, /end-of-stream opcode truncated/);
    refused(concatBytes([lzvn(1, [0xe1, 0x61, ...EOS, 0x0e]), endBlock()]), 1, /before the end of its block/);
    refused(concatBytes([lzvn(1, [0xe1, 0x61]), endBlock()]), 1, /ends without its end-of-stream opcode/);
    refused(concatBytes([lzvn(2, [0xe1, 0x61, ...EOS]), endBlock()]), 2, /lzvn block decodes to 1 bytes, not 2/);
    refused(concatBytes([lzvn(2, [0xe3, 0x61, 0x62, 0x63, ...EOS]), endBlock()]), 2, /lzvn block writes past its raw byte count/);
  });

  it('entropy-coded blocks: counts, states, frequency sums, stream bits', () => {
    const patch = (block: Uint8Array, edit: (v: DataView) => void): Uint8Array => {
      const b = new Uint8Array(block);
      edit(new DataView(b.buffer));
      return concatBytes([b, endBlock()]);
    };
    const v1 = handV1();
    refused(patch(v1, (v) => v.setUint32(12, 40004, true)), FSE_OUT.length, /40004 literals, more than 40000/);
    refused(patch(v1, (v) => v.setUint32(16, 10001, true)), FSE_OUT.length, /10001 matches, more than 10000/);
    refused(patch(v1, (v) => v.setUint16(44, 64, true)), FSE_OUT.length, /decoder state out of range/);
    refused(patch(v1, (v) => v.setUint16(50 + 2 * (104 + 0x61), 513, true)), FSE_OUT.length, /literal frequencies sum to 1025, not 1024/);
    refused(patch(v1, (v) => v.setUint16(50, 31, true)), FSE_OUT.length, /literal-length frequencies sum to 63, not 64/);
    refused(patch(v1, (v) => v.setInt32(40, -9, true)), FSE_OUT.length, /bit stream tail of -9 bits/);
    refused(patch(v1, (v) => v.setInt32(40, -8, true)), FSE_OUT.length, /set bits past its end/);
    // the first triple's D symbol made "repeat": no distance to repeat yet
    refused(patch(v1, (v) => v.setUint16(48, 5, true)), FSE_OUT.length, /match distance -1/);
    // L state 0 → L 0, then M 20 from D 2 with nothing written
    refused(patch(v1, (v) => v.setUint16(44, 0, true)), FSE_OUT.length, /match distance 2 at output byte 0/);
    // one literal fewer than the triples take
    refused(patch(v1, (v) => v.setUint32(12, 0, true)), FSE_OUT.length, /more literals than its block has/);
    refused(patch(v1, (v) => v.setUint32(4, FSE_OUT.length - 1, true)), FSE_OUT.length, /block writes past its raw byte count/);
    refused(patch(v1, (v) => v.setUint32(4, FSE_OUT.length - 1, true)), FSE_OUT.length - 1, /block writes past its raw byte count/);
    // the packed tables cut short by a smaller header_size
    const v2h = handV2();
    refused(patch(v2h, (v) => v.setUint32(24, v.getUint32(24, true) - 1, true)), FSE_OUT.length, /frequency tables/);
    refused(patch(v2h, (v) => v.setUint32(24, 31, true)), FSE_OUT.length, /block header size 31/);
    refused(patch(v2h, (v) => v.setUint32(24, 0xffffff, true)), FSE_OUT.length, /header runs past the end of the input/);
  });
});
