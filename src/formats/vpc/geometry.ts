/**
 * CHS geometry of a VHD and the size rounding `qemu-img create -f vpc`
 * applies: the VHD spec's algorithm (Appendix: CHS calculation), with
 * QEMU's choice of up to 255 sectors per track for large disks, and sizes
 * rounded *up* to the next CHS-representable size so convert never
 * truncates. Pure functions.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { VHD_MAX_GEOMETRY } from './footer.js';

/** Cylinders, heads and sectors per track. */
export interface Chs {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/**
 * The geometry the VHD spec derives from a sector count (it may describe
 * fewer sectors than asked: the caller rounds). Field widths are kept as
 * QEMU's u16/u8 variables keep them.
 */
function calculateGeometry(totalSectors: number): Chs {
  const total = Math.min(totalSectors, VHD_MAX_GEOMETRY);
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.ceil(cth / 1024) & 0xff;
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads) & 0xffff, heads, sectorsPerTrack: spt };
}

/** What a create request turns into. */
export interface RoundedSize {
  /** Sectors the new disk holds (its recorded size / 512). */
  readonly totalSectors: number;
  readonly chs: Chs;
}

const MAX_CHS: Chs = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };

/**
 * The size and geometry `qemu-img create -f vpc` gives a disk of `size`
 * bytes: the size in whole sectors, then (without `forceSize`) rounded up
 * until a CHS geometry covers it. When only the maximum geometry fits, the
 * size itself is kept and the geometry is the maximum.
 *
 * @throws {InvalidArgumentError} "The image size is too large for file format 'vpc'" above 2040 GiB
 */
export function roundedImageSize(size: number, forceSize: boolean): RoundedSize {
  const sectors = Math.ceil(size / 512);
  let chs: Chs = { cylinders: 0, heads: 0, sectorsPerTrack: 0 };
  if (forceSize) {
    chs = MAX_CHS;
  } else {
    const want = Math.min(VHD_MAX_GEOMETRY, sectors);
    // Each step moves by at most one track, so this ends within heads × sectors steps.
    for (let i = 0; want > chs.cylinders * chs.heads * chs.sectorsPerTrack; i++) chs = calculateGeometry(want + i);
  }
  if (chs.cylinders * chs.heads * chs.sectorsPerTrack === VHD_MAX_GEOMETRY) {
    if (sectors > LIMITS.vpcMaxSectors) throw new InvalidArgumentError("The image size is too large for file format 'vpc'");
    return { totalSectors: sectors, chs };
  }
  return { totalSectors: chs.cylinders * chs.heads * chs.sectorsPerTrack, chs };
}
