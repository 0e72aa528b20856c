/**
 * `qemu-img check` for VDI (vdi_co_check): the block map only, with
 * qemu's messages; VDI has no repair (`-r` answers "does not support
 * checks", as qemu does).
 */
import type { CheckCounts, CheckRequest, ImageChecker } from '../driver.js';
import { BlockMapCheck } from './block-map.js';
import type { VdiBlockMap } from './paged-map.js';

/** Entries checked between waits for the logged findings to be taken up (at most ~2.5 MB of lines). */
const LOG_BATCH = 65536;

/** The block map facts a check needs. */
export interface VdiCheckInput {
  readonly map: VdiBlockMap;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
}

/**
 * Checks a VDI block map, read a chunk at a time; one corruption per
 * finding, each logged as it is made (never all held: a 2^29-entry map of
 * zeros has as many).
 */
async function checkVdi(input: VdiCheckInput, req: CheckRequest): Promise<CheckCounts> {
  const check = new BlockMapCheck(input.blocksInImage, input.blocksAllocated, { onFinding: (f) => req.log(`ERROR: ${f.message}`) });
  for await (const { first, entries } of input.map.chunks()) {
    for (let i = 0; i < entries.length; i += LOG_BATCH) {
      req.signal?.throwIfAborted();
      check.add(entries.subarray(i, i + LOG_BATCH), first + i);
      await req.logged?.();
    }
    req.onProgress?.(first + entries.length, input.blocksInImage);
  }
  check.finish();
  return { checkErrors: 0, corruptions: check.found, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
}

/** A checker over the state `get` returns (read at check time). */
export function vdiChecker(get: () => VdiCheckInput): ImageChecker {
  return { canRepair: false, check: (req) => checkVdi(get(), req) };
}
