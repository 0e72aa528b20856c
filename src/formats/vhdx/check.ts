/**
 * `qemu-img check` for VHDX (vhdx_co_check): the image is opened without
 * the BAT validation an ordinary open applies, and every BAT entry pointing
 * past the end of the file (or into the metadata) is reported and counted
 * as a corruption; a dirty log replayed by a read/write open counts as one
 * repaired corruption, as qemu reports it. Nothing else is repaired.
 */
import type { ImageChecker } from '../driver.js';
import { batFindings } from './bat-check.js';
import type { VhdxState } from './open.js';

/** The checker of an open VHDX image. */
export function vhdxChecker(state: VhdxState): ImageChecker {
  return {
    canRepair: true,
    async check(req) {
      let corruptions = 0;
      for (const f of batFindings(state.batScope)) {
        req.log(f.message, 'report');
        // back-pressure: a BAT of millions of bad entries never waits whole in front of a slow reader
        if (++corruptions % 65536 === 0) await req.logged?.();
      }
      return { checkErrors: 0, corruptions, leaks: 0, corruptionsFixed: state.replayedOnOpen ? 1 : 0, leaksFixed: 0 };
    },
  };
}
