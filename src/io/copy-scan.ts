/**
 * convert's copy requests in native code: one thread-pool request reads,
 * finds the sparse runs (the C mirror of jobs/sparse-scan.ts) and, for a
 * target whose bytes have a fixed place, writes the data runs. No
 * JavaScript runs per sector or per write, and the main thread only hands
 * over and collects whole requests.
 */
import type { SparseRuns, SparseScan } from './byte-store.js';
import { fsError } from './errno.js';
import { native } from './native.js';

/** One side of a copy: an open file's descriptor and its name for messages. */
export interface CopyEnd {
  readonly fd: number;
  readonly name: string;
}

/** True when the native module can run copy requests. */
export function canCopyScan(): boolean {
  return native?.copyScan !== undefined;
}

/**
 * Reads `length` bytes of `from` at `fromOffset` into `buffer` (without
 * `from`: the buffer holds them already), splits them into `scan`'s runs
 * and, with `to`, writes the data runs at `toOffset`. Errors read as the
 * file store's own read and write errors.
 */
export async function copyScan(from: CopyEnd | undefined, fromOffset: number, to: CopyEnd | undefined, toOffset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns> {
  const run = native?.copyScan;
  if (!run) throw new Error('copyScan needs the native module');
  try {
    return await run(from ? from.fd : -1, fromOffset, to ? to.fd : -1, toOffset, buffer, length, scan.guest, scan.minBytes, scan.alignment, scan.unit?.size ?? 0, scan.unit?.base ?? 0);
  } catch (err) {
    const e = err as { write?: boolean; offset?: number };
    if (to && (e.write || !from)) throw fsError(err, `Could not write '${to.name}' at offset ${e.offset ?? toOffset}`, to.name);
    if (from) throw fsError(err, `Could not read '${from.name}' at offset ${e.offset ?? fromOffset}`, from.name);
    throw err;
  }
}

/**
 * Splits the `length` bytes `buffer` holds into `scan`'s runs and writes the
 * data runs to `to` at `toOffset`, in one request off the main thread (a
 * network source's bytes, already read).
 */
export function scanWrite(to: CopyEnd, toOffset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns> {
  return copyScan(undefined, 0, to, toOffset, buffer, length, scan);
}
