/**
 * `qemu-img check` for VMDK (vmdk_co_check): walks the image one cluster
 * step at a time and fails on the first allocated cluster that starts at or
 * past the end of its extent file (whose length QEMU counts in whole
 * sectors). A sparse extent steps grain by grain, its plain and compressed
 * grains alike; a FLAT extent is one step whose cluster is its data offset,
 * so only a file cut before the data start is reported, as in QEMU. Like
 * qemu, the first bad grain ends the check with an error (exit 1, "Check
 * failed: Invalid argument"); VMDK has no repair.
 */
import { alignUp } from '../../core/bytes.js';
import { IoError } from '../../core/errors.js';
import type { CheckCounts, CheckRequest, Extent, ImageChecker } from '../driver.js';
import { type ExtentHandle, isFlat } from './extent.js';
import type { VmdkImage } from './image.js';
import { SECTOR } from './layout.js';

/** The checker of an open VMDK image (walks its extents). */
export function vmdkChecker(image: VmdkImage): ImageChecker {
  return {
    canRepair: false,
    async check(req): Promise<CheckCounts> {
      for (const h of image.extents) {
        if (!h.store) continue;
        const eof = alignUp(await h.store.size(), SECTOR);
        if (isFlat(h)) {
          if (h.flatOffset >= eof) pastEof(req, h.start);
        } else {
          await checkSparse(image, h, eof, req);
        }
      }
      return { checkErrors: 0, corruptions: 0, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
    },
  };
}

/** Fails on the first grain of sparse extent `h` that starts at or past `eof`. */
async function checkSparse(image: VmdkImage, h: ExtentHandle, eof: number, req: CheckRequest): Promise<void> {
  const end = h.start + h.length;
  for (let pos = h.start; pos < end; ) {
    let extents: readonly Extent[];
    try {
      extents = await image.mapping(pos, end - pos);
    } catch (err) {
      req.log(`ERROR: could not get cluster_offset for sector ${Math.floor(pos / SECTOR)}`);
      throw new IoError('Operation not permitted', { cause: err });
    }
    for (const e of extents) {
      const first = firstPastEof(e, eof, h.sparse?.geom.grainBytes ?? SECTOR);
      if (first !== undefined) pastEof(req, first);
      pos = e.offset + e.length;
    }
  }
}

/** Guest offset of the first grain of `e` whose host offset is at or past `eof`, if any. */
function firstPastEof(e: Extent, eof: number, grain: number): number | undefined {
  if (e.kind === 'compressed') return e.hostOffset >= eof ? e.offset : undefined;
  if (e.kind !== 'data') return undefined;
  // plain grains of one run sit back to back in the file
  const first = e.hostOffset >= eof ? e.offset : Math.max(e.offset, Math.ceil((e.offset + (eof - e.hostOffset)) / grain) * grain);
  return first < e.offset + e.length ? first : undefined;
}

function pastEof(req: CheckRequest, guestOffset: number): never {
  req.log(`ERROR: cluster offset for sector ${Math.floor(guestOffset / SECTOR)} points after EOF`);
  throw new IoError('Invalid argument');
}
