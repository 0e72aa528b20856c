/**
 * Test-only encoder of LZFSE's entropy-coded blocks ('bvx2', and 'bvx1'
 * with plain tables), from the format's description: literals in four
 * interleaved FSE streams, L/M/D values as FSE symbols plus extra bits,
 * each bit stream written so the decoder reads it backwards from its end.
 * Independent of src/core (its own tables and normalisation).
 */
import { concatBytes, findMatches, LZFSE_MAGIC, lzvnBlock, rawBlock, endBlock } from './lzfse-encode.js';

const L_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 5, 8];
const L_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 28, 60];
const M_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 5, 8, 11];
const M_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 56, 312];
const D_EXTRA = [
  0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15,
];
const D_BASE = [
  0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 36, 44, 52, 60, 76, 92, 108, 124, 156, 188, 220, 252, 316, 380, 444, 508, 636, 764, 892, 1020, 1276, 1532, 1788, 2044, 2556, 3068, 3580, 4092, 5116, 6140, 7164, 8188,
  10236, 12284, 14332, 16380, 20476, 24572, 28668, 32764, 40956, 49148, 57340, 65532, 81916, 98300, 114684, 131068, 163836, 196604, 229372,
];
const MAX_L = 315;
const MAX_M = 2359;
const MAX_D = 262139;

type Pull = [bits: number, value: number];

/** Frequencies summing to `states`, every used symbol at least 1 (all unused: symbol 0 takes every state). */
export function normalize(counts: readonly number[], states: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const f = counts.map((c) => (c === 0 ? 0 : Math.max(1, Math.floor((c * states) / total))));
  if (total === 0) f[0] = states;
  let diff = states - f.reduce((a, b) => a + b, 0);
  while (diff !== 0) {
    const i = f.indexOf(Math.max(...f));
    const step = diff > 0 ? diff : -Math.min(-diff, (f[i] as number) - 1);
    f[i] = (f[i] as number) + step;
    diff -= step;
  }
  return f;
}

/** One FSE alphabet: encodes symbol sequences (in decode order) into per-symbol pulls and an initial state. */
class FseCoder {
  readonly #byNext = new Map<number, Int32Array>();
  readonly #k: number[] = [];
  readonly #delta: number[] = [];

  constructor(freq: readonly number[], states: number) {
    let s = 0;
    freq.forEach((f, sym) => {
      if (f === 0) return;
      const k = Math.clz32(f) - Math.clz32(states);
      const j0 = ((2 * states) >> k) - f;
      const map = new Int32Array(states).fill(-1);
      for (let j = 0; j < f; j++, s++) {
        const kk = j < j0 ? k : k - 1;
        const delta = j < j0 ? ((f + j) << k) - states : (j - j0) << (k - 1);
        this.#k[s] = kk;
        this.#delta[s] = delta;
        for (let x = delta; x < delta + (1 << kk); x++) map[x] = s;
      }
      this.#byNext.set(sym, map);
    });
  }

  /** Walks the symbols backwards: each state is the one of its symbol whose range holds the next state. */
  encode(symbols: readonly number[]): { init: number; pulls: Pull[] } {
    const pulls: Pull[] = new Array<Pull>(symbols.length);
    let next = 0;
    for (let i = symbols.length - 1; i >= 0; i--) {
      const s = (this.#byNext.get(symbols[i] as number) as Int32Array)[next] as number;
      pulls[i] = [this.#k[s] as number, next - (this.#delta[s] as number)];
      next = s;
    }
    return { init: next, pulls };
  }
}

/** Lays pulls (decode order) out so a reader from the top bit down meets them in order; ≥ 8 bytes. */
function writeBits(pulls: readonly Pull[]): { bytes: Uint8Array; extra: number } {
  const total = pulls.reduce((s, [k]) => s + k, 0);
  const len = Math.ceil(total / 8);
  const pad = Math.max(0, 8 - len);
  const bytes = new Uint8Array(pad + len);
  let p = total + pad * 8;
  for (const [k, v] of pulls) {
    p -= k;
    for (let b = 0; b < k; b++) if ((v >>> b) & 1) bytes[(p + b) >> 3] = (bytes[(p + b) >> 3] as number) | (1 << ((p + b) & 7));
  }
  return { bytes, extra: total - 8 * len };
}

function symbolOf(base: readonly number[], v: number): number {
  let s = 0;
  while (s + 1 < base.length && (base[s + 1] as number) <= v) s++;
  return s;
}

/** Values of one of L, M, D: symbols for the FSE chain, and each value's extra bits. */
function valueSymbols(values: readonly number[], base: readonly number[], extra: readonly number[], symbols: number, states: number) {
  const syms = values.map((v) => symbolOf(base, v));
  const counts = new Array<number>(symbols).fill(0);
  for (const s of syms) counts[s] = (counts[s] as number) + 1;
  const freq = normalize(counts, states);
  const { init, pulls } = new FseCoder(freq, states).encode(syms);
  const full: Pull[] = pulls.map(([k, v], i) => {
    const e = extra[syms[i] as number] as number;
    return [k + e, (v << e) | ((values[i] as number) - (base[syms[i] as number] as number))];
  });
  return { freq, init, pulls: full };
}

/** The 360 frequencies in bvx2's variable-length code, LSB first, padded to a byte. */
export function packedFreqs(freq: readonly number[]): number[] {
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  const push = (code: number, bits: number): void => {
    acc |= code << n;
    n += bits;
    while (n >= 8) {
      out.push(acc & 0xff);
      acc >>>= 8;
      n -= 8;
    }
  };
  const short: Record<number, [number, number]> = { 0: [0, 2], 1: [2, 2], 2: [1, 3], 3: [5, 3], 4: [3, 5], 5: [11, 5], 6: [19, 5], 7: [27, 5] };
  for (const v of freq) {
    if (v < 8) push(...(short[v] as [number, number]));
    else if (v < 24) push(7 | ((v - 8) << 4), 8);
    else push(15 | ((v - 24) << 4), 14);
  }
  if (n > 0) out.push(acc & 0xff);
  return out;
}

/** One LZ step of an entropy-coded block: L literals, M match bytes, D distance (0: repeat the previous). */
interface Lmd {
  l: number;
  m: number;
  d: number;
}

/** An entropy-coded block of `data[from, to)`, matches reaching back to `data[0]`. */
export function fseBlock(data: Uint8Array, from: number, to: number, version: 1 | 2 = 2): Uint8Array {
  const lits: number[] = [];
  const lmd: Lmd[] = [];
  let prev = -1;
  let pos = from;
  for (const t of findMatches(data, from, to, MAX_D, MAX_M)) {
    for (let i = 0; i < t.lit; i++) lits.push(data[t.start + i] as number);
    let l = t.lit;
    while (l > MAX_L) {
      // a literal-only step still needs a valid distance: repeat one, or 1
      lmd.push({ l: MAX_L, m: 0, d: prev > 0 ? 0 : 1 });
      if (prev < 0) prev = 1;
      l -= MAX_L;
      pos += MAX_L;
    }
    if (t.m === 0 && l === 0) continue;
    const d = t.m === 0 ? (prev > 0 ? prev : 1) : t.d;
    lmd.push({ l, m: t.m, d: d === prev ? 0 : d });
    prev = d;
    pos += l + t.m;
  }
  if (pos !== to) throw new Error('encoder lost bytes');
  while (lits.length % 4) lits.push(0);
  const litCounts = new Array<number>(256).fill(0);
  for (const b of lits) litCounts[b] = (litCounts[b] as number) + 1;
  const litFreq = normalize(litCounts, 1024);
  const coder = new FseCoder(litFreq, 1024);
  const lanes = [0, 1, 2, 3].map((j) => coder.encode(lits.filter((_, i) => i % 4 === j)));
  const litPulls = lits.map((_, i) => (lanes[i % 4] as { pulls: Pull[] }).pulls[i >> 2] as Pull);
  const litBits = writeBits(litPulls);
  const L = valueSymbols(lmd.map((x) => x.l), L_BASE, L_EXTRA, 20, 64);
  const M = valueSymbols(lmd.map((x) => x.m), M_BASE, M_EXTRA, 20, 64);
  const D = valueSymbols(lmd.map((x) => x.d), D_BASE, D_EXTRA, 64, 256);
  const lmdBits = writeBits(lmd.flatMap((_, i) => [L.pulls[i] as Pull, M.pulls[i] as Pull, D.pulls[i] as Pull]));
  const freq = [...L.freq, ...M.freq, ...D.freq, ...litFreq];
  const fields = {
    raw: to - from,
    literals: lits.length,
    matches: lmd.length,
    litPayload: litBits.bytes.length,
    lmdPayload: lmdBits.bytes.length,
    litExtra: litBits.extra,
    litStates: lanes.map((x) => x.init),
    lmdExtra: lmdBits.extra,
    states: [L.init, M.init, D.init],
  };
  const header = version === 2 ? v2Header(fields, freq) : v1Header(fields, freq);
  return concatBytes([header, litBits.bytes, lmdBits.bytes]);
}

interface Fields {
  raw: number;
  literals: number;
  matches: number;
  litPayload: number;
  lmdPayload: number;
  litExtra: number;
  litStates: number[];
  lmdExtra: number;
  states: number[];
}

function v2Header(f: Fields, freq: readonly number[]): Uint8Array {
  const tables = packedFreqs(freq);
  const h = new Uint8Array(32 + tables.length);
  const v = new DataView(h.buffer);
  const b = BigInt;
  const [s0, s1, s2, s3] = f.litStates.map(b) as [bigint, bigint, bigint, bigint];
  const [ls, ms, ds] = f.states.map(b) as [bigint, bigint, bigint];
  v.setUint32(0, LZFSE_MAGIC.v2, true);
  v.setUint32(4, f.raw, true);
  v.setBigUint64(8, b(f.literals) | (b(f.litPayload) << 20n) | (b(f.matches) << 40n) | (b(f.litExtra + 7) << 60n), true);
  v.setBigUint64(16, s0 | (s1 << 10n) | (s2 << 20n) | (s3 << 30n) | (b(f.lmdPayload) << 40n) | (b(f.lmdExtra + 7) << 60n), true);
  v.setBigUint64(24, b(h.length) | (ls << 32n) | (ms << 42n) | (ds << 52n), true);
  h.set(tables, 32);
  return h;
}

function v1Header(f: Fields, freq: readonly number[]): Uint8Array {
  const h = new Uint8Array(772);
  const v = new DataView(h.buffer);
  [LZFSE_MAGIC.v1, f.raw, f.litPayload + f.lmdPayload, f.literals, f.matches, f.litPayload, f.lmdPayload].forEach((x, i) => v.setUint32(4 * i, x, true));
  v.setInt32(28, f.litExtra, true);
  f.litStates.forEach((s, i) => v.setUint16(32 + 2 * i, s, true));
  v.setInt32(40, f.lmdExtra, true);
  f.states.forEach((s, i) => v.setUint16(44 + 2 * i, s, true));
  freq.forEach((x, i) => v.setUint16(50 + 2 * i, x, true));
  return h;
}

/** Block kinds a stream may use. */
export type BlockKind = 'raw' | 'lzvn' | 'v1' | 'v2';

/**
 * A whole LZFSE stream of `data`: blocks of `blockSize` bytes, their kinds
 * taken in turn from `kinds`, then 'bvx$'.
 */
export function encodeLzfse(data: Uint8Array, kinds: readonly BlockKind[] = ['v2'], blockSize = 64 * 1024): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let from = 0, i = 0; from < data.length; from += blockSize, i++) {
    const to = Math.min(data.length, from + blockSize);
    const kind = kinds[i % kinds.length] as BlockKind;
    if (kind === 'raw') parts.push(rawBlock(data.subarray(from, to)));
    else if (kind === 'lzvn') parts.push(lzvnBlock(data, from, to));
    // at most 32 KiB per entropy-coded block keeps literals and matches under the per-block caps
    else for (let at = from; at < to; at += 32 * 1024) parts.push(fseBlock(data, at, Math.min(to, at + 32 * 1024), kind === 'v1' ? 1 : 2));
  }
  parts.push(endBlock());
  return concatBytes(parts);
}
