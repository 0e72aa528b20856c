/**
 * A bounded LZFSE decoder (pure, no dependency), for dmg's ULFO chunks:
 * decodes a whole stream into exactly `outputLength` bytes, as QEMU's
 * dmg-lzfse module asks liblzfse to. The stream is a sequence of blocks,
 * each opening with a 4-byte little-endian magic:
 *
 * ```
 *  'bvx-'  n_raw_bytes u32, then the bytes stored
 *  'bvxn'  n_raw_bytes u32, n_payload_bytes u32, then LZVN codes (lzvn.ts)
 *  'bvx1'  entropy-coded block, plain frequency tables (lzfse-header.ts)
 *  'bvx2'  entropy-coded block, packed frequency tables
 *  'bvx$'  end of stream (what follows it is ignored)
 * ```
 *
 * Matches may reach back into earlier blocks. Every count read from the
 * stream is checked against the input and the output space before it sizes
 * or indexes anything; the only allocations are the output and a padded
 * copy of the input.
 */
import { CorruptImageError } from './errors.js';
import { decodeFseBlock } from './lzfse-fse.js';
import { readFseHeader } from './lzfse-header.js';
import { decodeLzvnBlock } from './lzvn.js';

const END = 0x24787662;
const RAW = 0x2d787662;
const V1 = 0x31787662;
const V2 = 0x32787662;
const LZVN = 0x6e787662;

function corrupt(what: string): CorruptImageError {
  return new CorruptImageError(`corrupt lzfse stream: ${what}`);
}

/** The block's raw byte count, refused when it would not fit in what is left of the output. */
function rawBytes(view: DataView, at: number, left: number): number {
  const n = view.getUint32(at + 4, true);
  if (n > left) throw corrupt(`block of ${n} bytes overruns the ${left} bytes left of the output`);
  return n;
}

/**
 * Decodes the LZFSE stream `input` into exactly `outputLength` bytes.
 *
 * @throws {CorruptImageError} naming what was wrong: an unknown block
 *   magic, a header or payload past the input, a block overrunning the
 *   output, a corrupt entropy-coded or LZVN block, a stream without its
 *   end-of-stream block, or output short of `outputLength`
 */
export function decodeLzfse(input: Uint8Array, outputLength: number): Uint8Array {
  const out = new Uint8Array(outputLength);
  // the bit readers read whole 32-bit words; zeros past the end keep them in bounds
  const data = new Uint8Array(input.length + 8);
  data.set(input);
  const size = input.length;
  const view = new DataView(data.buffer);
  let src = 0;
  let dst = 0;
  for (;;) {
    if (size - src < 4) throw corrupt('stream ends without its end-of-stream block');
    const magic = view.getUint32(src, true);
    if (magic === END) break;
    if (magic === RAW) {
      if (size - src < 8) throw corrupt('block header truncated');
      const n = rawBytes(view, src, outputLength - dst);
      if (n > size - src - 8) throw corrupt('stored block runs past the end of the input');
      out.set(data.subarray(src + 8, src + 8 + n), dst);
      src += 8 + n;
      dst += n;
    } else if (magic === LZVN) {
      if (size - src < 12) throw corrupt('block header truncated');
      const n = rawBytes(view, src, outputLength - dst);
      const payload = view.getUint32(src + 8, true);
      if (payload > size - src - 12) throw corrupt('lzvn block runs past the end of the input');
      decodeLzvnBlock(data, src + 12, src + 12 + payload, out, dst, dst + n);
      src += 12 + payload;
      dst += n;
    } else if (magic === V1 || magic === V2) {
      const h = readFseHeader(data.subarray(0, size), src, size - src, magic === V2);
      rawBytes(view, src, outputLength - dst);
      src = decodeFseBlock(h, data, src + h.headerSize, out, dst);
      dst += h.rawBytes;
    } else {
      throw corrupt(`unknown block magic 0x${magic.toString(16).padStart(8, '0')}`);
    }
  }
  if (dst !== outputLength) throw corrupt(`stream decodes to ${dst} bytes, not ${outputLength}`);
  return out;
}
