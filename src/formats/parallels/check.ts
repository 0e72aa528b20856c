/**
 * `qemu-img check [-r]` for Parallels, as parallels_co_check (qemu 7.2)
 * does it: the dirty flag, BAT entries past the end of the file (cleared
 * by `-r all`), cluster statistics, and space after the last cluster
 * (leaks; `-r` cuts the file there). Lines and counts as QEMU's.
 */
import type { CheckCounts, CheckRequest, ImageChecker } from '../driver.js';
import { PRL_HEADER_SIZE } from './header.js';
import { clusterOffset, le32, type PrlState } from './state.js';

/** Counters one pass builds. */
interface Tally {
  corruptions: number;
  corruptionsFixed: number;
  allocated: number;
  fragmented: number;
  highOffset: number;
}

/** The BAT walk: clusters past the end of the file, allocation and fragmentation counts. */
async function walkBat(s: PrlState, req: CheckRequest, fileSize: number, t: Tally): Promise<void> {
  const fix = req.repair === 'all';
  let prev = 0;
  // entries past the end of the file read as 0 (unallocated) and count for nothing
  for await (const { first, entries } of s.bat.chunks(s.batInFile)) {
    req.signal?.throwIfAborted();
    for (let j = 0; j < entries.length; j++) {
      const off = clusterOffset(s.header, entries[j] as number);
      if (off === 0) {
        prev = 0;
        continue;
      }
      const i = first + j;
      if (off > fileSize) {
        req.log(`${fix ? 'Repairing' : 'ERROR'} cluster ${i} is outside image`);
        t.corruptions++;
        if (fix) {
          prev = 0;
          await s.store.write(PRL_HEADER_SIZE + i * 4, le32(0));
          s.bat.set(i, 0);
          t.corruptionsFixed++;
          continue;
        }
      }
      t.allocated++;
      if (off > t.highOffset) t.highOffset = off;
      if (prev !== 0 && prev + s.clusterSize !== off) t.fragmented++;
      prev = off;
    }
    await req.logged?.();
    req.onProgress?.(first + entries.length, s.batInFile);
  }
}

/** One check pass over the image's state. */
async function checkParallels(s: PrlState, req: CheckRequest): Promise<CheckCounts> {
  // QEMU's bdrv_getlength: whole sectors
  const fileSize = Math.ceil((await s.store.size()) / 512) * 512;
  const t: Tally = { corruptions: 0, corruptionsFixed: 0, allocated: 0, fragmented: 0, highOffset: 0 };
  if (s.unclean) {
    req.log(`${req.repair === 'all' ? 'Repairing' : 'ERROR'} image was not closed correctly`);
    t.corruptions++;
    if (req.repair === 'all') {
      // the close writes the clean state
      t.corruptionsFixed++;
      s.unclean = false;
    }
  }
  await walkBat(s, req, fileSize, t);
  if (t.corruptionsFixed > 0) await s.store.flush();
  const imageEndOffset = t.highOffset + s.clusterSize;
  let leaks = 0;
  let leaksFixed = 0;
  if (fileSize > imageEndOffset) {
    const fix = req.repair !== 'none';
    leaks = Math.ceil((fileSize - imageEndOffset) / s.clusterSize);
    req.log(`${fix ? 'Repairing' : 'ERROR'} space leaked at the end of the image ${fileSize - imageEndOffset}`);
    if (fix) {
      await s.store.truncate(imageEndOffset);
      leaksFixed = leaks;
    }
  }
  return {
    checkErrors: 0,
    corruptions: t.corruptions,
    leaks,
    corruptionsFixed: t.corruptionsFixed,
    leaksFixed,
    imageEndOffset,
    totalClusters: s.header.batEntries,
    allocatedClusters: t.allocated,
    fragmentedClusters: t.fragmented,
    compressedClusters: 0,
  };
}

/** A checker over the open image's state (repair needs a read/write open). */
export function parallelsChecker(s: PrlState): ImageChecker {
  return { canRepair: true, check: (req) => checkParallels(s, req) };
}
