/**
 * `qemu-img check` for VHDX (vhdx_co_check): the BAT is validated at open
 * (a bad entry fails the open, as in qemu), so a check that runs finds
 * nothing more; a dirty log replayed by a read/write open counts as one
 * repaired corruption, as qemu reports it.
 */
import type { ImageChecker } from '../driver.js';

/** The checker of an open VHDX image. */
export function vhdxChecker(replayedOnOpen: () => boolean): ImageChecker {
  return {
    canRepair: true,
    check: () =>
      Promise.resolve({ checkErrors: 0, corruptions: 0, leaks: 0, corruptionsFixed: replayedOnOpen() ? 1 : 0, leaksFixed: 0 }),
  };
}
