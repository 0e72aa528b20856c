/**
 * A test-only LZFSE encoder, written from the format's description and
 * independent of src/core/lzfse*.ts (no LZFSE encoder exists on this
 * machine or in the npm registry as a package): 'bvx-' stored blocks,
 * 'bvxn' LZVN blocks using every opcode class, and 'bvx2'/'bvx1'
 * entropy-coded blocks with simply normalised FSE tables. Compression is
 * greedy and plain; what matters is that the streams are valid.
 */
import { concat } from './bytes.js';

const MAGIC = { end: 0x24787662, raw: 0x2d787662, v1: 0x31787662, v2: 0x32787662, lzvn: 0x6e787662 } as const;

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** One LZ step: `lit` literal bytes from `start`, then `m` bytes copied from `d` back. */
export interface Triple {
  readonly start: number;
  readonly lit: number;
  readonly m: number;
  readonly d: number;
}

/** Greedy matches of ≥ 4 bytes within `maxD`, over `data[from, to)` (earlier bytes are history). */
export function findMatches(data: Uint8Array, from: number, to: number, maxD: number, maxM: number): Triple[] {
  const head = new Map<number, number>();
  const key = (i: number): number => (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
  for (let i = Math.max(0, from - maxD); i + 4 <= from; i++) head.set(key(i), i);
  const out: Triple[] = [];
  let litStart = from;
  let i = from;
  while (i + 4 <= to) {
    const k = key(i);
    const prev = head.get(k);
    head.set(k, i);
    if (prev !== undefined && i - prev <= maxD) {
      let m = 0;
      while (i + m < to && m < maxM && data[prev + m] === data[i + m]) m++;
      if (m >= 4) {
        out.push({ start: litStart, lit: i - litStart, m, d: i - prev });
        for (let j = i + 1; j < i + m && j + 4 <= to; j++) head.set(key(j), j);
        i += m;
        litStart = i;
        continue;
      }
    }
    i++;
  }
  if (litStart < to) out.push({ start: litStart, lit: to - litStart, m: 0, d: 0 });
  return out;
}

/** A 'bvx-' block. */
export function rawBlock(data: Uint8Array): Uint8Array {
  return concat([u32(MAGIC.raw), u32(data.length), data]);
}

/** The 'bvx$' end-of-stream marker. */
export function endBlock(): Uint8Array {
  return new Uint8Array(u32(MAGIC.end));
}

function lzvnOpKind(op: number): string {
  if (op >= 0xf0) return op === 0xf0 ? 'lrg_m' : 'sml_m';
  if (op >= 0xe0) return op === 0xe0 ? 'lrg_l' : 'sml_l';
  if (op >= 0xd0 || (op >= 0x70 && op < 0x80)) return 'udef';
  if (op >= 0xa0 && op < 0xc0) return 'med_d';
  if ((op & 7) === 7) return 'lrg_d';
  if ((op & 7) === 6) return op >= 0x40 ? 'pre_d' : 'other';
  return 'sml_d';
}

/** The LZVN codes of `data[from, to)`: literal runs, the four match forms, match-only tails, eos. */
export function lzvnPayload(data: Uint8Array, from: number, to: number): Uint8Array {
  const out: number[] = [];
  const lits = (s: number, n: number): void => {
    for (let i = 0; i < n; i++) out.push(data[s + i] as number);
  };
  let prevD = 0;
  for (const t of findMatches(data, from, to, 0xffff, 1 << 20)) {
    let s = t.start;
    let l = t.lit;
    // literal-only opcodes until at most 3 remain for the match opcode (all of them when there is no match)
    const keep = t.m > 0 ? 3 : 0;
    while (l > keep) {
      const n = Math.min(l - keep, 271);
      if (n >= 16) out.push(0xe0, n - 16);
      else out.push(0xe0 | n);
      lits(s, n);
      s += n;
      l -= n;
    }
    if (t.m === 0) continue;
    let m = Math.min(t.m, 10);
    const d = t.d;
    if (d === prevD && l > 0 && lzvnOpKind((l << 6) | ((m - 3) << 3) | 6) === 'pre_d') {
      out.push((l << 6) | ((m - 3) << 3) | 6);
    } else if (d === prevD && l === 0) {
      m = 0;
    } else if (d < 1536 && lzvnOpKind((l << 6) | ((m - 3) << 3) | (d >> 8)) === 'sml_d') {
      out.push((l << 6) | ((m - 3) << 3) | (d >> 8), d & 0xff);
    } else if (d < 16384) {
      m = Math.min(t.m, 34);
      const w = (d << 2) | ((m - 3) & 3);
      out.push(0xa0 | (l << 3) | ((m - 3) >> 2), w & 0xff, w >> 8);
    } else {
      while (lzvnOpKind((l << 6) | ((m - 3) << 3) | 7) !== 'lrg_d') m--;
      out.push((l << 6) | ((m - 3) << 3) | 7, d & 0xff, d >> 8);
    }
    lits(s, l);
    prevD = d;
    // the rest of the match repeats the distance
    for (let rest = t.m - m; rest > 0; ) {
      const n = Math.min(rest, 271);
      if (n >= 16) out.push(0xf0, n - 16);
      else out.push(0xf0 | n);
      rest -= n;
    }
  }
  out.push(0x06, 0, 0, 0, 0, 0, 0, 0);
  return new Uint8Array(out);
}

/** A 'bvxn' block of `data[from, to)` (matches may reach back before `from`). */
export function lzvnBlock(data: Uint8Array, from = 0, to = data.length): Uint8Array {
  const payload = lzvnPayload(data, from, to);
  return concat([u32(MAGIC.lzvn), u32(to - from), u32(payload.length), payload]);
}

export { concat as concatBytes, MAGIC as LZFSE_MAGIC };
