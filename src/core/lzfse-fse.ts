/**
 * The body of an LZFSE entropy-coded block (bvx1/bvx2): literals and
 * L, M, D triples, each stream coded with finite state entropy (tANS) and
 * read backwards from its end. Four interleaved literal decoders fill the
 * block's literal buffer first; then each triple copies L literals and an
 * M-byte match D bytes back (D = 0 repeats the previous distance).
 *
 * An FSE decoder in state S emits the symbol of S, reads k bits b and moves
 * to state delta + b; a symbol of frequency f owns f consecutive states, the
 * first j0 = 2N/2^k - f of them reading k bits (2^k·f in [N, 2N)), the
 * rest k-1. L, M and D symbols carry extra low bits read with the state
 * bits. The bit reader mirrors liblzfse's 64-bit one, refills included,
 * so a stream reads exactly as there.
 */
import { CorruptImageError } from './errors.js';
import { FSE, type FseBlockHeader } from './lzfse-header.js';
import { copyLzMatch } from './lzvn.js';

const { lSymbols: L_SYMBOLS, mSymbols: M_SYMBOLS, dSymbols: D_SYMBOLS, literalSymbols: LITERAL_SYMBOLS } = FSE;
const { lStates: L_STATES, mStates: M_STATES, dStates: D_STATES, literalStates: LITERAL_STATES } = FSE;

const L_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 5, 8];
const L_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 28, 60];
const M_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 8, 11];
const M_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 56, 312];
/** Distance symbols: extra bits rise by one every four symbols (0 0 0 0 1 1 1 1 … 15); bases follow from them. */
const D_EXTRA = Array.from({ length: D_SYMBOLS }, (_, i) => i >> 2);
const D_BASE = (() => {
  const base: number[] = [];
  let v = 0;
  for (let i = 0; i < D_SYMBOLS; i++) {
    base.push(v);
    v += 1 << (D_EXTRA[i] as number);
  }
  return base;
})();

function corrupt(what: string): CorruptImageError {
  return new CorruptImageError(`corrupt lzfse stream: ${what}`);
}

/**
 * Calls `each(state, symbol, k, delta)` for every state of the table the
 * frequencies `freq[from, from + count)` define over `states` states.
 */
function spread(freq: Uint16Array, from: number, count: number, states: number, each: (state: number, symbol: number, k: number, delta: number) => void): void {
  const clzN = Math.clz32(states);
  let state = 0;
  for (let sym = 0; sym < count; sym++) {
    const f = freq[from + sym] as number;
    if (f === 0) continue;
    const k = Math.clz32(f) - clzN;
    const j0 = ((2 * states) >> k) - f;
    for (let j = 0; j < f; j++) {
      if (j < j0) each(state++, sym, k, ((f + j) << k) - states);
      else each(state++, sym, k - 1, (j - j0) << (k - 1));
    }
  }
}

/** liblzfse's bit reader: the input as one little-endian number, read from a top bit downwards, refilled a byte at a time. */
class BackwardBits {
  /** Bits not yet read lie below this bit of the input. */
  private bit = 0;
  /** The lowest byte the reference reader has loaded; refills below byte 0 fail there. */
  private byte = 0;

  /** `data` has ≥ 4 zero bytes past the input, so a read never leaves it. */
  constructor(private readonly data: Uint8Array) {}

  /** Starts a stream that ends at byte `end` with `extra` ∈ [-8, 0] bits of its last byte unused (they must be 0). */
  init(end: number, extra: number, floor: number): void {
    const load = extra === 0 ? 7 : 8;
    if (extra > 0 || extra < -8) throw corrupt(`bit stream tail of ${extra} bits`);
    if (end - load < floor) throw corrupt('bit stream shorter than its first load');
    if (extra < 0 && (this.data[end - 1] as number) >>> (8 + extra) !== 0) throw corrupt('bit stream has set bits past its end');
    this.byte = end - load;
    this.bit = end * 8 + extra;
  }

  /** Brings the loaded bits back to 56..63, as the reference does between symbols. */
  refill(): void {
    const byte = this.byte - ((63 - (this.bit - this.byte * 8)) >>> 3);
    if (byte < 0) throw corrupt('bit stream reads before the start of the input');
    this.byte = byte;
  }

  /** The next `k` ≤ 24 bits. */
  pull(k: number): number {
    const p = (this.bit -= k);
    const b = p >>> 3;
    const d = this.data;
    const w = (d[b] as number) | ((d[b + 1] as number) << 8) | ((d[b + 2] as number) << 16) | ((d[b + 3] as number) << 24);
    return (w >>> (p & 7)) & ((1 << k) - 1);
  }
}

/** An L, M or D decoder: per state, the bits to read, the extra value bits among them, next-state base and value base. */
class ValueDecoder {
  state = 0;
  readonly total: Uint8Array;
  readonly extra: Uint8Array;
  readonly delta: Uint16Array;
  readonly base: Int32Array;

  constructor(states: number) {
    this.total = new Uint8Array(states);
    this.extra = new Uint8Array(states);
    this.delta = new Uint16Array(states);
    this.base = new Int32Array(states);
  }

  build(freq: Uint16Array, from: number, count: number, states: number, extraBits: readonly number[], base: readonly number[]): void {
    spread(freq, from, count, states, (s, sym, k, delta) => {
      const e = extraBits[sym] as number;
      this.total[s] = k + e;
      this.extra[s] = e;
      this.delta[s] = delta;
      this.base[s] = base[sym] as number;
    });
  }

  decode(bits: BackwardBits): number {
    const s = this.state;
    const e = this.extra[s] as number;
    const v = bits.pull(this.total[s] as number);
    this.state = (this.delta[s] as number) + (v >>> e);
    return (this.base[s] as number) + (v & ((1 << e) - 1));
  }
}

/** Per-block tables, reused: decoding is synchronous, one block at a time. */
const literalTable = new Int32Array(LITERAL_STATES);
const literalBuf = new Uint8Array(FSE.maxLiterals);
const lDecoder = new ValueDecoder(L_STATES);
const mDecoder = new ValueDecoder(M_STATES);
const dDecoder = new ValueDecoder(D_STATES);

/** Decodes the block's literals (rounded up to a multiple of 4, as the reference does) into {@link literalBuf}. */
function decodeLiterals(h: FseBlockHeader, data: Uint8Array, payload: number): number {
  spread(h.freq, L_SYMBOLS + M_SYMBOLS + D_SYMBOLS, LITERAL_SYMBOLS, LITERAL_STATES, (s, sym, k, delta) => {
    literalTable[s] = delta * 65536 + sym * 256 + k;
  });
  const bits = new BackwardBits(data);
  bits.init(payload + h.literalPayload, h.literalBits, 0);
  const count = Math.ceil(h.literals / 4) * 4;
  let [s0, s1, s2, s3] = h.literalStates;
  for (let i = 0; i < count; i += 4) {
    bits.refill();
    let e = literalTable[s0] as number;
    literalBuf[i] = e >>> 8;
    s0 = (e >>> 16) + bits.pull(e & 0xff);
    e = literalTable[s1] as number;
    literalBuf[i + 1] = e >>> 8;
    s1 = (e >>> 16) + bits.pull(e & 0xff);
    e = literalTable[s2] as number;
    literalBuf[i + 2] = e >>> 8;
    s2 = (e >>> 16) + bits.pull(e & 0xff);
    e = literalTable[s3] as number;
    literalBuf[i + 3] = e >>> 8;
    s3 = (e >>> 16) + bits.pull(e & 0xff);
  }
  return count;
}

/**
 * Decodes the entropy-coded block whose payload (literals, then L, M, D)
 * starts at `payload` in `data` (the input, zero-padded by ≥ 4 bytes) into
 * `out[at, at + h.rawBytes)`; the caller has checked that range lies in
 * `out`. Returns the input offset past the block.
 *
 * @throws {CorruptImageError} a stream that reads out of its input, takes
 *   literals the block does not have, matches before the output's start,
 *   or writes other than exactly `h.rawBytes` bytes
 */
export function decodeFseBlock(h: FseBlockHeader, data: Uint8Array, payload: number, out: Uint8Array, at: number): number {
  const litCount = decodeLiterals(h, data, payload);
  const lmdStart = payload + h.literalPayload;
  const bits = new BackwardBits(data);
  bits.init(lmdStart + h.lmdPayload, h.lmdBits, lmdStart);
  lDecoder.build(h.freq, 0, L_SYMBOLS, L_STATES, L_EXTRA, L_BASE);
  mDecoder.build(h.freq, L_SYMBOLS, M_SYMBOLS, M_STATES, M_EXTRA, M_BASE);
  dDecoder.build(h.freq, L_SYMBOLS + M_SYMBOLS, D_SYMBOLS, D_STATES, D_EXTRA, D_BASE);
  lDecoder.state = h.lState;
  mDecoder.state = h.mState;
  dDecoder.state = h.dState;
  const end = at + h.rawBytes;
  let dst = at;
  let lit = 0;
  // no previous distance yet: a first "repeat" fails the range check
  let dist = -1;
  for (let i = 0; i < h.matches; i++) {
    bits.refill();
    const l = lDecoder.decode(bits);
    if (l > litCount - lit) throw corrupt('a match takes more literals than its block has');
    const m = mDecoder.decode(bits);
    const d = dDecoder.decode(bits);
    if (d !== 0) dist = d;
    if (dist < 0 || dist > dst + l) throw corrupt(`match distance ${dist} at output byte ${dst + l}`);
    if (l + m > end - dst) throw corrupt('block writes past its raw byte count');
    if (l > 16) out.set(literalBuf.subarray(lit, lit + l), dst);
    else for (let j = 0; j < l; j++) out[dst + j] = literalBuf[lit + j] as number;
    dst += l;
    lit += l;
    copyLzMatch(out, dst, dist, m);
    dst += m;
  }
  if (dst !== end) throw corrupt(`block decodes to ${dst - at} bytes, not ${h.rawBytes}`);
  return lmdStart + h.lmdPayload;
}
