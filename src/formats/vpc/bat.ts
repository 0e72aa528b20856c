/**
 * The VHD Block Allocation Table: one big-endian u32 per block, the sector
 * (512-byte unit) where the block's sector bitmap starts, followed by the
 * block's data; `0xFFFFFFFF` = not allocated. Pure functions.
 */
import { CorruptImageError } from '../../core/errors.js';

/** BAT entry of a block that is not allocated. */
export const BAT_UNALLOCATED = 0xffffffff;

/** Decodes `entries` big-endian u32s from `bytes`. */
export function parseBat(bytes: Uint8Array, entries: number): Uint32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength >= entries * 4) {
    // In place: BATs reach 2 GiB (qemu's INT_MAX / 4 entries), so no second copy.
    if (LITTLE_ENDIAN) Buffer.from(bytes.buffer, bytes.byteOffset, entries * 4).swap32();
    return new Uint32Array(bytes.buffer, bytes.byteOffset, entries);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) out[i] = v.getUint32(i * 4);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Where the block layout of a dynamic VHD sits. */
export interface BlockLayout {
  readonly batOffset: number;
  readonly entries: number;
  readonly blockSize: number;
  readonly bitmapSize: number;
}

/**
 * The first free byte after the BAT and every allocated block (QEMU's
 * `free_data_block_offset`): where the footer sits and new blocks go.
 */
export function dataEnd(bat: Uint32Array, l: BlockLayout): number {
  let end = Math.ceil((l.batOffset + l.entries * 4) / 512) * 512;
  const span = l.bitmapSize + l.blockSize;
  for (let i = 0; i < bat.length; i++) {
    const e = bat[i] as number;
    if (e !== BAT_UNALLOCATED) end = Math.max(end, e * 512 + span);
  }
  return end;
}

/**
 * Refuses layouts where writing could destroy metadata or other blocks:
 * a block overlapping the first 512 bytes, the dynamic header, the BAT, or
 * another block. QEMU does not check this; vdisk does before it writes.
 *
 * @throws {CorruptImageError} naming the BAT entry and its offset
 */
export function checkBlockOverlaps(bat: Uint32Array, l: BlockLayout, headerOffset: number, headerSize: number): void {
  const span = l.bitmapSize + l.blockSize;
  const reserved: [number, number, string][] = [
    [0, 512, 'the footer copy'],
    [headerOffset, headerOffset + headerSize, 'the dynamic disk header'],
    [l.batOffset, l.batOffset + l.entries * 4, 'the BAT'],
  ];
  const starts: number[] = [];
  for (let i = 0; i < bat.length; i++) {
    const e = bat[i] as number;
    if (e === BAT_UNALLOCATED) continue;
    const start = e * 512;
    for (const [a, b, what] of reserved) {
      if (start < b && start + span > a) {
        throw new CorruptImageError(`VHD BAT entry ${i} (block at offset ${start}) overlaps ${what}`, { offset: l.batOffset + i * 4 });
      }
    }
    starts.push(start);
  }
  const sorted = Float64Array.from(starts).sort();
  for (let i = 1; i < sorted.length; i++) {
    if ((sorted[i] as number) < (sorted[i - 1] as number) + span) {
      const at = sorted[i] as number;
      const idx = bat.indexOf(at / 512);
      throw new CorruptImageError(`VHD BAT entry ${idx} (block at offset ${at}) overlaps another block`, { offset: l.batOffset + idx * 4 });
    }
  }
}
