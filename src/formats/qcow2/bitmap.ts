/**
 * The persistent dirty-bitmap directory (qcow2-bitmap.c), parsed and kept
 * for `info`. vdisk does not update bitmaps, so writes to an image that has
 * them are refused.
 */
import { decodeName } from '../../core/byte-names.js';
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** One bitmap directory entry as `info` shows it. */
export interface BitmapInfo {
  readonly name: string;
  readonly granularity: number;
  readonly flags: string[];
}


/** Parses `count` directory entries from `dir` (the whole directory). */
export function parseBitmapDirectory(dir: Uint8Array, count: number, dirOffset: number): BitmapInfo[] {
  const view = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const out: BitmapInfo[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 24 > dir.length) throw new CorruptImageError('Bitmap directory is truncated', { offset: dirOffset + p });
    const flags = view.getUint32(p + 12);
    const granBits = view.getUint8(p + 17);
    const nameSize = view.getUint16(p + 18);
    const extra = view.getUint32(p + 20);
    if (granBits < 9 || granBits > 31) throw new CorruptImageError(`Bitmap granularity 2^${granBits} is out of range`, { offset: dirOffset + p });
    if (nameSize > LIMITS.qcow2MaxBitmapNameBytes) throw new CorruptImageError('Bitmap name too long', { offset: dirOffset + p });
    const end = p + 24 + extra + nameSize;
    if (end > dir.length) throw new CorruptImageError('Bitmap directory entry exceeds the directory', { offset: dirOffset + p });
    const f: string[] = [];
    if (flags & 1) f.push('in-use');
    if (flags & 2) f.push('auto');
    out.push({ name: decodeName(dir.subarray(p + 24 + extra, end)), granularity: 2 ** granBits, flags: f });
    p = Math.ceil(end / 8) * 8;
  }
  return out;
}
