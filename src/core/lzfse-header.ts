/**
 * Headers of LZFSE's entropy-coded blocks, all little-endian: 'bvx1' with
 * plain 16-bit frequency tables, and 'bvx2' (what Apple's encoder writes)
 * with the counts packed into three 64-bit words and the tables in a
 * variable-length code.
 *
 * ```
 *  bvx1 (772 bytes): 0 magic, 4 n_raw_bytes, 8 n_payload_bytes,
 *    12 n_literals, 16 n_matches, 20 n_literal_payload_bytes,
 *    24 n_lmd_payload_bytes, 28 literal_bits i32, 32 literal_state u16[4],
 *    40 lmd_bits i32, 44 l_state, 46 m_state, 48 d_state u16,
 *    50 freq u16[20 L + 20 M + 64 D + 256 literal]
 *  bvx2: 0 magic, 4 n_raw_bytes, then three u64 (bit offset:width)
 *    8:  n_literals 0:20, n_literal_payload_bytes 20:20, n_matches 40:20, literal_bits+7 60:3
 *    16: literal_state[0..3] 0:10 10:10 20:10 30:10, n_lmd_payload_bytes 40:20, lmd_bits+7 60:3
 *    24: header_size 0:32, l_state 32:10, m_state 42:10, d_state 52:10
 *    32..header_size: the 360 frequencies, LSB-first codes (none: all zero)
 * ```
 *
 * Checked as liblzfse checks them (counts, states, frequency sums no
 * larger than the state counts, the payload inside the input), and further:
 * a table the block decodes with must sum exactly to its state count, so
 * every state of it is defined.
 */
import { CorruptImageError } from './errors.js';

/**
 * Symbols and states of the four FSE alphabets (literal lengths L, match
 * lengths M, distances D, literal bytes), and the per-block caps.
 */
export const FSE = {
  lSymbols: 20,
  mSymbols: 20,
  dSymbols: 64,
  literalSymbols: 256,
  lStates: 64,
  mStates: 64,
  dStates: 256,
  literalStates: 1024,
  maxLiterals: 40000,
  maxMatches: 10000,
} as const;
const { lSymbols: L_SYMBOLS, mSymbols: M_SYMBOLS, dSymbols: D_SYMBOLS, literalSymbols: LITERAL_SYMBOLS } = FSE;
const { lStates: L_STATES, mStates: M_STATES, dStates: D_STATES, literalStates: LITERAL_STATES, maxLiterals: MAX_LITERALS, maxMatches: MAX_MATCHES } = FSE;

const FREQS = L_SYMBOLS + M_SYMBOLS + D_SYMBOLS + LITERAL_SYMBOLS;
const V1_SIZE = 772;
const V2_FIXED = 32;

/** One entropy-coded block's header, decoded. */
export interface FseBlockHeader {
  readonly headerSize: number;
  readonly rawBytes: number;
  readonly literals: number;
  readonly matches: number;
  readonly literalPayload: number;
  readonly lmdPayload: number;
  /** The literal stream's bit count past its last whole byte, in [-8, 0]. */
  readonly literalBits: number;
  readonly literalStates: readonly [number, number, number, number];
  readonly lmdBits: number;
  readonly lState: number;
  readonly mState: number;
  readonly dState: number;
  /** L, M, D, then literal frequencies. */
  readonly freq: Uint16Array;
}

function corrupt(what: string): CorruptImageError {
  return new CorruptImageError(`corrupt lzfse stream: ${what}`);
}

/** Bits per code by the low 5 bits of the stream, and the values of the codes of up to 5 bits. */
const CODE_BITS = [2, 3, 2, 5, 2, 3, 2, 8, 2, 3, 2, 5, 2, 3, 2, 14, 2, 3, 2, 5, 2, 3, 2, 8, 2, 3, 2, 5, 2, 3, 2, 14];
const CODE_VALUE = [0, 2, 1, 4, 0, 3, 1, -1, 0, 2, 1, 5, 0, 3, 1, -1, 0, 2, 1, 6, 0, 3, 1, -1, 0, 2, 1, 7, 0, 3, 1, -1];

/** The packed frequency tables of a bvx2 header: they must end exactly at `end`, less than a byte left over. */
function unpackFreqs(src: Uint8Array, from: number, end: number, freq: Uint16Array): void {
  if (from === end) return;
  let at = from;
  let acc = 0;
  let n = 0;
  for (let i = 0; i < FREQS; i++) {
    while (at < end && n + 8 <= 32) {
      acc = (acc | ((src[at++] as number) << n)) >>> 0;
      n += 8;
    }
    const bits = CODE_BITS[acc & 31] as number;
    if (bits > n) throw corrupt('frequency tables truncated');
    freq[i] = bits === 8 ? 8 + ((acc >>> 4) & 0xf) : bits === 14 ? 24 + ((acc >>> 4) & 0x3ff) : (CODE_VALUE[acc & 31] as number);
    acc >>>= bits;
    n -= bits;
  }
  if (n >= 8 || at !== end) throw corrupt('frequency tables do not fill their header');
}

function field(v: bigint, offset: number, width: number): number {
  return Number((v >> BigInt(offset)) & ((1n << BigInt(width)) - 1n));
}

function readV2(view: DataView, src: Uint8Array, at: number, avail: number): FseBlockHeader {
  if (avail < V2_FIXED) throw corrupt('block header truncated');
  const v0 = view.getBigUint64(at + 8, true);
  const v1 = view.getBigUint64(at + 16, true);
  const v2 = view.getBigUint64(at + 24, true);
  const headerSize = field(v2, 0, 32);
  if (headerSize > avail) throw corrupt('block header runs past the end of the input');
  if (headerSize < V2_FIXED) throw corrupt(`block header size ${headerSize}`);
  const freq = new Uint16Array(FREQS);
  unpackFreqs(src, at + V2_FIXED, at + headerSize, freq);
  return {
    headerSize,
    rawBytes: view.getUint32(at + 4, true),
    literals: field(v0, 0, 20),
    literalPayload: field(v0, 20, 20),
    matches: field(v0, 40, 20),
    literalBits: field(v0, 60, 3) - 7,
    literalStates: [field(v1, 0, 10), field(v1, 10, 10), field(v1, 20, 10), field(v1, 30, 10)],
    lmdPayload: field(v1, 40, 20),
    lmdBits: field(v1, 60, 3) - 7,
    lState: field(v2, 32, 10),
    mState: field(v2, 42, 10),
    dState: field(v2, 52, 10),
    freq,
  };
}

function readV1(view: DataView, at: number, avail: number): FseBlockHeader {
  if (avail < V1_SIZE) throw corrupt('block header truncated');
  const u32 = (o: number): number => view.getUint32(at + o, true);
  const u16 = (o: number): number => view.getUint16(at + o, true);
  const freq = new Uint16Array(FREQS);
  for (let i = 0; i < FREQS; i++) freq[i] = u16(50 + 2 * i);
  return {
    headerSize: V1_SIZE,
    rawBytes: u32(4),
    literals: u32(12),
    matches: u32(16),
    literalPayload: u32(20),
    lmdPayload: u32(24),
    literalBits: view.getInt32(at + 28, true),
    literalStates: [u16(32), u16(34), u16(36), u16(38)],
    lmdBits: view.getInt32(at + 40, true),
    lState: u16(44),
    mState: u16(46),
    dState: u16(48),
    freq,
  };
}

/** Sums one table; over its state count always fails, under it only when the block decodes with it. */
function checkFreq(freq: Uint16Array, from: number, count: number, states: number, used: boolean, name: string): void {
  let sum = 0;
  for (let i = from; i < from + count; i++) sum += freq[i] as number;
  if (sum > states || (used && sum !== states)) throw corrupt(`${name} frequencies sum to ${sum}, not ${states}`);
}

function check(h: FseBlockHeader, avail: number): void {
  if (h.headerSize + h.literalPayload + h.lmdPayload > avail) throw corrupt('block payload runs past the end of the input');
  if (h.literals > MAX_LITERALS) throw corrupt(`block has ${h.literals} literals, more than ${MAX_LITERALS}`);
  if (h.matches > MAX_MATCHES) throw corrupt(`block has ${h.matches} matches, more than ${MAX_MATCHES}`);
  if (h.literalStates.some((s) => s >= LITERAL_STATES) || h.lState >= L_STATES || h.mState >= M_STATES || h.dState >= D_STATES) {
    throw corrupt('block header has a decoder state out of range');
  }
  const f = h.freq;
  const lmd = h.matches > 0;
  checkFreq(f, 0, L_SYMBOLS, L_STATES, lmd, 'literal-length');
  checkFreq(f, L_SYMBOLS, M_SYMBOLS, M_STATES, lmd, 'match-length');
  checkFreq(f, L_SYMBOLS + M_SYMBOLS, D_SYMBOLS, D_STATES, lmd, 'distance');
  checkFreq(f, FREQS - LITERAL_SYMBOLS, LITERAL_SYMBOLS, LITERAL_STATES, h.literals > 0, 'literal');
}

/**
 * Reads and checks the header of the bvx1 (`v2` false) or bvx2 block at
 * `at`, with `avail` input bytes from there on.
 *
 * @throws {CorruptImageError} naming the first field out of bounds
 */
export function readFseHeader(src: Uint8Array, at: number, avail: number, v2: boolean): FseBlockHeader {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const h = v2 ? readV2(view, src, at, avail) : readV1(view, at, avail);
  check(h, avail);
  return h;
}
