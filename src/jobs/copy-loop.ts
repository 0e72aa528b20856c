/**
 * The copy loop shared by convert (and later commit and rebase): walks the
 * source's block status and writes data, zeros, or nothing, keeping the
 * target sparse.
 */
import { throwIfAborted } from '../core/abort.js';
import { scanRun } from '../core/bytes.js';
import type { ProgressMeter } from '../core/progress.js';
import type { BlockDevice } from '../block/device.js';

/** How one source range is copied into the target. */
export interface CopySettings {
  /** Zero runs at least this long (bytes) stay sparse; 0 writes every byte as data (`-S 0`). */
  readonly sparseSize: number;
  /** The target already reads as zeros where nothing is written (new image, or `--target-is-zero`). */
  readonly targetIsZero: boolean;
  /** Copy only what the source's top layer allocates (`-B`: the new backing holds the rest). */
  readonly topOnly: boolean;
  /** Write every unit compressed (`-c`). */
  readonly compress: boolean;
  /** Size of one compressed unit (the target's cluster size). */
  readonly unit: number;
  /** Largest data request. */
  readonly bufferSize: number;
  readonly signal: AbortSignal;
  readonly progress: ProgressMeter;
}

/** Bytes this loop wrote as data and as zeros. */
export interface CopyCounters {
  dataBytes: number;
  zeroBytes: number;
}

/** Copies all of `source` into `target` at `targetOffset`. */
export async function copyImage(source: BlockDevice, target: BlockDevice, targetOffset: number, s: CopySettings, counters: CopyCounters): Promise<void> {
  if (s.compress) return copyCompressed(source, target, targetOffset, s, counters);
  const size = source.size;
  let offset = 0;
  while (offset < size) {
    throwIfAborted(s.signal);
    const want = Math.min(size - offset, 1 << 30);
    const st = s.topOnly ? await source.topStatus(offset, want) : await source.blockStatus(offset, want);
    if (s.topOnly && !st.present) {
      // Left unallocated: the target's backing file supplies it.
    } else if (st.zero && s.sparseSize > 0) {
      if (!s.targetIsZero || s.topOnly) {
        await target.writeZeroes(targetOffset + offset, st.length, { mayUnmap: true });
        counters.zeroBytes += st.length;
      }
    } else {
      await copyData(source, target, offset, st.length, targetOffset, s, counters);
      offset += st.length;
      continue;
    }
    s.progress.advance(st.length);
    offset += st.length;
  }
}

async function copyData(source: BlockDevice, target: BlockDevice, start: number, length: number, targetOffset: number, s: CopySettings, counters: CopyCounters): Promise<void> {
  const buf = new Uint8Array(Math.min(s.bufferSize, length));
  for (let off = start; off < start + length; ) {
    throwIfAborted(s.signal);
    const n = Math.min(buf.length, start + length - off);
    const chunk = buf.subarray(0, n);
    await source.read(off, chunk);
    if (s.sparseSize === 0) {
      await target.write(targetOffset + off, chunk);
      counters.dataBytes += n;
    } else {
      await writeSparse(target, targetOffset + off, chunk, s, counters);
    }
    s.progress.advance(n);
    off += n;
  }
}

/** Writes `chunk`, leaving zero runs of at least `sparseSize` unwritten (or written as zeros). */
async function writeSparse(target: BlockDevice, at: number, chunk: Uint8Array, s: CopySettings, counters: CopyCounters): Promise<void> {
  const granule = Math.min(s.sparseSize, 4096) || 512;
  let pos = 0;
  let dataStart = -1;
  const flushData = async (end: number): Promise<void> => {
    if (dataStart < 0) return;
    await target.write(at + dataStart, chunk.subarray(dataStart, end));
    counters.dataBytes += end - dataStart;
    dataStart = -1;
  };
  while (pos < chunk.length) {
    const run = scanRun(chunk.subarray(pos), granule);
    if (run.zero && run.length >= s.sparseSize) {
      await flushData(pos);
      if (!s.targetIsZero || s.topOnly) {
        await target.writeZeroes(at + pos, run.length, { mayUnmap: true });
        counters.zeroBytes += run.length;
      }
    } else if (dataStart < 0) {
      dataStart = pos;
    }
    pos += run.length;
  }
  await flushData(chunk.length);
}

async function copyCompressed(source: BlockDevice, target: BlockDevice, targetOffset: number, s: CopySettings, counters: CopyCounters): Promise<void> {
  const size = source.size;
  const unit = new Uint8Array(s.unit);
  for (let off = 0; off < size; off += s.unit) {
    throwIfAborted(s.signal);
    const n = Math.min(s.unit, size - off);
    const chunk = unit.subarray(0, n);
    const st = s.topOnly ? await source.topStatus(off, n) : await source.blockStatus(off, n);
    if (st.length >= n && ((s.topOnly && !st.present) || (st.zero && s.targetIsZero && !s.topOnly))) {
      s.progress.advance(n);
      continue;
    }
    await source.read(off, chunk);
    if (scanRun(chunk, n).zero && s.targetIsZero && !s.topOnly) {
      s.progress.advance(n);
      continue;
    }
    await target.writeCompressed(targetOffset + off, chunk);
    counters.dataBytes += n;
    s.progress.advance(n);
  }
}
