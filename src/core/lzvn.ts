/**
 * LZVN, the byte-aligned LZ77 coding of LZFSE's 'bvxn' blocks (what Apple's
 * encoder writes for small inputs). Each opcode carries a literal length L
 * (the literal bytes follow it), a match length M and a match distance D,
 * or reuses the previous distance:
 *
 * ```
 *  sml_d  LLMMMDDD DDDDDDDD             L 0-3, M 3-10, D < 2^11
 *  med_d  101LLMMM DDDDDDMM DDDDDDDD    L 0-3, M 3-34, D < 2^14 (bytes 2-3 LE)
 *  lrg_d  LLMMM111 DDDDDDDD DDDDDDDD    L 0-3, M 3-10, D < 2^16 (LE)
 *  pre_d  LLMMM110                      L 1-3, M 3-10, previous D
 *  sml_m  1111MMMM / lrg_m 0xf0 M-16    match only: M 1-15 / 16-271
 *  sml_l  1110LLLL / lrg_l 0xe0 L-16    literal only: L 1-15 / 16-271
 *  eos    0x06 and 7 more bytes; nop 0x0e, 0x16; the rest of x6 below 0x40,
 *         0x70-0x7f and 0xd0-0xdf are undefined
 * ```
 *
 * The block must end exactly with its eos opcode, having written exactly
 * its raw byte count, as liblzfse requires.
 */
import { CorruptImageError } from './errors.js';

const SML_D = 0;
const MED_D = 1;
const LRG_D = 2;
const PRE_D = 3;
const SML_M = 4;
const LRG_M = 5;
const SML_L = 6;
const LRG_L = 7;
const NOP = 8;
const EOS = 9;
const UDEF = 10;
/** Bytes of the end-of-stream opcode. */
const EOS_BYTES = 8;

function kindOf(op: number): number {
  if (op >= 0xf0) return op === 0xf0 ? LRG_M : SML_M;
  if (op >= 0xe0) return op === 0xe0 ? LRG_L : SML_L;
  if (op >= 0xd0 || (op >= 0x70 && op < 0x80)) return UDEF;
  if (op >= 0xa0 && op < 0xc0) return MED_D;
  if ((op & 7) === 7) return LRG_D;
  if ((op & 7) !== 6) return SML_D;
  if (op >= 0x40) return PRE_D;
  if (op === 0x06) return EOS;
  return op === 0x0e || op === 0x16 ? NOP : UDEF;
}

/** Opcode kind by first byte. */
const KIND = Uint8Array.from({ length: 256 }, (_, op) => kindOf(op));

function corrupt(what: string): CorruptImageError {
  return new CorruptImageError(`corrupt lzfse stream: ${what}`);
}

/** Copies an LZ match of `length` bytes from `distance` back; an overlapping one (D < M) repeats the last D bytes. */
export function copyLzMatch(out: Uint8Array, at: number, distance: number, length: number): void {
  if (distance >= length && length > 32) out.copyWithin(at, at - distance, at - distance + length);
  else for (let i = 0; i < length; i++) out[at + i] = out[at + i - distance] as number;
}

/**
 * Decodes the LZVN payload `src[from, to)` into `out[at, end)`; matches may
 * reach back into earlier blocks' output (from `out[0]` on).
 *
 * @throws {CorruptImageError} an undefined opcode, a truncated opcode or
 *   literal, a distance of 0 or before the output's start, output past
 *   `end`, or a payload that does not end with eos right at `end`
 */
export function decodeLzvnBlock(src: Uint8Array, from: number, to: number, out: Uint8Array, at: number, end: number): void {
  // liblzfse never reaches the eos of a block that writes nothing
  if (at === end) throw corrupt('lzvn block with no output bytes');
  let s = from;
  let d = at;
  let dist = 0;
  while (s < to) {
    const op = src[s] as number;
    let len = 1;
    let lit = 0;
    let match = 0;
    switch (KIND[op]) {
      case SML_D:
        len = 2;
        lit = op >>> 6;
        match = ((op >>> 3) & 7) + 3;
        break;
      case MED_D:
        len = 3;
        lit = (op >>> 3) & 3;
        break;
      case LRG_D:
        len = 3;
        lit = op >>> 6;
        match = ((op >>> 3) & 7) + 3;
        break;
      case PRE_D:
        lit = op >>> 6;
        match = ((op >>> 3) & 7) + 3;
        break;
      case SML_M:
        match = op & 15;
        break;
      case LRG_M:
        len = 2;
        break;
      case SML_L:
        lit = op & 15;
        break;
      case LRG_L:
        len = 2;
        break;
      case NOP:
        s++;
        continue;
      case EOS:
        if (to - s !== EOS_BYTES) throw corrupt(`lzvn end-of-stream opcode ${to - s < EOS_BYTES ? 'truncated' : 'before the end of its block'}`);
        if (d !== end) throw corrupt(`lzvn block decodes to ${d - at} bytes, not ${end - at}`);
        return;
      default:
        throw corrupt(`undefined lzvn opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
    if (len > to - s) throw corrupt('lzvn opcode truncated');
    switch (KIND[op]) {
      case SML_D:
        dist = ((op & 7) << 8) | (src[s + 1] as number);
        break;
      case MED_D: {
        const w = (src[s + 1] as number) | ((src[s + 2] as number) << 8);
        match = (((op & 7) << 2) | (w & 3)) + 3;
        dist = w >>> 2;
        break;
      }
      case LRG_D:
        dist = (src[s + 1] as number) | ((src[s + 2] as number) << 8);
        break;
      case LRG_M:
        match = (src[s + 1] as number) + 16;
        break;
      case LRG_L:
        lit = (src[s + 1] as number) + 16;
        break;
    }
    s += len;
    if (lit > to - s) throw corrupt('lzvn literal runs past the end of its block');
    if (lit + match > end - d) throw corrupt('lzvn block writes past its raw byte count');
    for (let i = 0; i < lit; i++) out[d + i] = src[s + i] as number;
    s += lit;
    d += lit;
    if (match === 0) continue;
    if (dist === 0 || dist > d) throw corrupt(`lzvn match distance ${dist} at output byte ${d}`);
    copyLzMatch(out, d, dist, match);
    d += match;
  }
  throw corrupt('lzvn block ends without its end-of-stream opcode');
}
