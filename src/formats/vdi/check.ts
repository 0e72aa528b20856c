/**
 * `qemu-img check` for VDI (vdi_co_check): the block map only, with
 * qemu's messages; VDI has no repair (`-r` answers "does not support
 * checks", as qemu does).
 */
import type { CheckCounts, CheckRequest, ImageChecker } from '../driver.js';
import { checkBlockMap } from './block-map.js';

/** The block map facts a check needs. */
export interface VdiCheckInput {
  readonly map: Uint32Array;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
}

/** Checks a VDI block map; one corruption per finding. */
export function checkVdi(input: VdiCheckInput, req: CheckRequest): CheckCounts {
  const report = checkBlockMap(input.map, input.blocksInImage, input.blocksAllocated, { maxFindings: Number.MAX_SAFE_INTEGER });
  for (const f of report.findings) req.log(`ERROR: ${f.message}`);
  return { checkErrors: 0, corruptions: report.findings.length, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
}

/** A checker over the state `get` returns (read at check time). */
export function vdiChecker(get: () => VdiCheckInput): ImageChecker {
  return { canRepair: false, check: (req) => Promise.resolve(checkVdi(get(), req)) };
}
