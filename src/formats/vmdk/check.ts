/**
 * `qemu-img check` for VMDK (vmdk_co_check): every allocated grain must
 * start inside its extent file. Like qemu, the first bad grain ends the
 * check with an error (exit 1, "Check failed: Invalid argument"); VMDK has
 * no repair.
 */
import { IoError } from '../../core/errors.js';
import type { CheckCounts, FormatImage, ImageChecker } from '../driver.js';

/** The checker of an open VMDK image (walks its mapping). */
export function vmdkChecker(image: FormatImage): ImageChecker {
  return {
    canRepair: false,
    async check(req): Promise<CheckCounts> {
      const g = image.granularity;
      const sizes = new Map<unknown, number>();
      for (let pos = 0; pos < image.virtualSize; ) {
        let extents;
        try {
          extents = await image.mapping(pos, image.virtualSize - pos);
        } catch (err) {
          req.log(`ERROR: could not get cluster_offset for sector ${Math.floor(pos / 512)}`);
          throw new IoError('Operation not permitted', { cause: err });
        }
        for (const e of extents) {
          if (e.kind === 'data') {
            let size = sizes.get(e.store);
            if (size === undefined) sizes.set(e.store, (size = await e.store.size()));
            // the first grain of the extent that starts at or past the end of its file
            const first = e.hostOffset >= size ? e.offset : Math.max(e.offset, Math.ceil((e.offset + (size - e.hostOffset)) / g) * g);
            if (first < e.offset + e.length) {
              req.log(`ERROR: cluster offset for sector ${Math.floor(first / 512)} points after EOF`);
              throw new IoError('Invalid argument');
            }
          }
          pos = e.offset + e.length;
        }
      }
      return { checkErrors: 0, corruptions: 0, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
    },
  };
}
