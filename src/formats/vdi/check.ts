/**
 * `qemu-img check` for VDI (vdi_co_check): the block map only, with
 * qemu's messages; VDI has no repair (`-r` answers "does not support
 * checks", as qemu does).
 */
import type { CheckCounts, CheckRequest, ImageChecker } from '../driver.js';
import { BlockMapCheck } from './block-map.js';
import type { VdiBlockMap } from './paged-map.js';

/** The block map facts a check needs. */
export interface VdiCheckInput {
  readonly map: VdiBlockMap;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
}

/** Checks a VDI block map, read a chunk at a time; one corruption per finding. */
export async function checkVdi(input: VdiCheckInput, req: CheckRequest): Promise<CheckCounts> {
  const check = new BlockMapCheck(input.blocksInImage, input.blocksAllocated, { maxFindings: Number.MAX_SAFE_INTEGER });
  for await (const { first, entries } of input.map.chunks()) {
    req.signal?.throwIfAborted();
    check.add(entries, first);
    req.onProgress?.(first + entries.length, input.blocksInImage);
  }
  const report = check.finish();
  for (const f of report.findings) req.log(`ERROR: ${f.message}`);
  return { checkErrors: 0, corruptions: report.findings.length, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
}

/** A checker over the state `get` returns (read at check time). */
export function vdiChecker(get: () => VdiCheckInput): ImageChecker {
  return { canRepair: false, check: (req) => checkVdi(get(), req) };
}
