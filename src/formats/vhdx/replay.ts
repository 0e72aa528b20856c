/**
 * Replaying the log's active sequence. Read-write: the writes go to the
 * file, the file is flushed, then the headers are rewritten with a zero log
 * GUID (the caller does that). Read-only: a {@link ReplayedStore} shows the
 * file as it would be after replay without writing a byte (qemu refuses to
 * open such images read-only; vdisk can).
 */
import { CorruptImageError, IoError } from '../../core/errors.js';
import { GiB_BOUND, LOG_SECTOR_SIZE, MiB } from './constants.js';
import type { ByteStore } from '../driver.js';
import type { StoreIdentity } from '../../io/byte-store.js';
import type { LogReplay } from './log.js';

/**
 * Checks the replay against the file: a FlushedFileOffset beyond the end
 * means the file was truncated (qemu's rule), and no write may reach past
 * what the log says the file size was (or grow the file by more than
 * 1 GiB, so a hostile log cannot make a huge sparse file).
 * Returns the size the file must have after replay.
 */
export function checkReplay(replay: LogReplay, fileSize: number, logOffset: number): number {
  if (replay.flushedFileOffset > fileSize) {
    throw new CorruptImageError(`VHDX log was flushed at file size ${replay.flushedFileOffset} but the file has ${fileSize} bytes; it has been truncated`, { offset: logOffset });
  }
  if (replay.lastFileOffset > fileSize + GiB_BOUND) {
    throw new CorruptImageError(`VHDX log would grow the file from ${fileSize} to ${replay.lastFileOffset} bytes`, { offset: logOffset });
  }
  const target = Math.max(fileSize, replay.lastFileOffset % MiB === 0 ? replay.lastFileOffset : (Math.floor(replay.lastFileOffset / MiB) + 1) * MiB);
  for (const w of replay.writes) {
    const end = w.fileOffset + (w.kind === 'data' ? LOG_SECTOR_SIZE : w.length);
    if (w.fileOffset < MiB || end > target) {
      throw new CorruptImageError(`VHDX log writes [${w.fileOffset}, ${end}) outside the file's data area`, { offset: logOffset });
    }
  }
  return target;
}

/** Applies the replay to a writable store and flushes it. */
export async function applyReplay(store: ByteStore, replay: LogReplay, targetSize: number): Promise<void> {
  const zero = new Uint8Array(MiB);
  for (const w of replay.writes) {
    if (w.kind === 'data') {
      await store.write(w.fileOffset, w.data);
      continue;
    }
    for (let off = w.fileOffset; off < w.fileOffset + w.length; off += zero.length) {
      const n = Math.min(zero.length, w.fileOffset + w.length - off);
      await store.write(off, n === zero.length ? zero : zero.subarray(0, n));
    }
  }
  if ((await store.size()) < targetSize) await store.truncate(targetSize);
  await store.flush();
}

/** Disjoint sorted [start, end) runs. */
type Runs = [number, number][];

function addRun(runs: Runs, start: number, end: number): Runs {
  const out: Runs = [];
  let s = start;
  let e = end;
  for (const [a, b] of runs) {
    if (b < s || a > e) out.push([a, b]);
    else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  out.push([s, e]);
  return out.sort((x, y) => x[0] - y[0]);
}

/** Zero descriptors a read-only replay keeps (each costs a scan of the others). */
const MAX_ZERO_RUNS = 4096;

function covered(runs: Runs, at: number): boolean {
  return runs.some(([a, b]) => at >= a && at < b);
}

/**
 * A read-only view of a store with a log replayed in memory: zero runs and
 * data sectors laid over the file's bytes, the size grown to what replay
 * would make it.
 */
export class ReplayedStore implements ByteStore {
  readonly name: string;
  readonly readOnly = true;
  readonly #base: ByteStore;
  readonly #size: number;
  readonly #data = new Map<number, Uint8Array>();
  #zeros: Runs = [];

  constructor(base: ByteStore, replay: LogReplay, size: number) {
    this.#base = base;
    this.name = base.name;
    this.#size = size;
    // Walk backwards so the last write to a byte wins: a sector already
    // decided by a later write (data, or a later zero run) is skipped.
    const zeroCount = replay.writes.filter((w) => w.kind === 'zero').length;
    if (zeroCount > MAX_ZERO_RUNS) throw new CorruptImageError(`VHDX log has ${zeroCount} zero descriptors (vdisk replays at most ${MAX_ZERO_RUNS} in memory)`);
    for (let i = replay.writes.length - 1; i >= 0; i--) {
      const w = replay.writes[i] as LogReplay['writes'][number];
      if (w.kind === 'zero') this.#zeros = addRun(this.#zeros, w.fileOffset, w.fileOffset + w.length);
      else if (!this.#data.has(w.fileOffset) && !covered(this.#zeros, w.fileOffset)) this.#data.set(w.fileOffset, w.data);
    }
  }

  identity(): StoreIdentity | undefined {
    return this.#base.identity?.();
  }

  async size(): Promise<number> {
    return this.#size;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    const n = await this.#base.read(offset, into);
    const end = offset + into.length;
    for (const [a, b] of this.#zeros) {
      if (b <= offset) continue;
      if (a >= end) break;
      into.fill(0, Math.max(a, offset) - offset, Math.min(b, end) - offset);
    }
    if (this.#data.size > 0) {
      const first = Math.floor(offset / LOG_SECTOR_SIZE) * LOG_SECTOR_SIZE;
      for (let s = first; s < end; s += LOG_SECTOR_SIZE) {
        const d = this.#data.get(s);
        if (!d) continue;
        const from = Math.max(s, offset);
        const to = Math.min(s + LOG_SECTOR_SIZE, end);
        into.set(d.subarray(from - s, to - s), from - offset);
      }
    }
    return Math.max(n, Math.min(into.length, Math.max(0, this.#size - offset)));
  }

  async write(): Promise<void> {
    throw new IoError(`'${this.name}' is a read-only replayed view`);
  }
  async truncate(): Promise<void> {
    throw new IoError(`'${this.name}' is a read-only replayed view`);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    await this.#base.close();
  }
  async allocatedSize(): Promise<number | undefined> {
    return this.#base.allocatedSize?.();
  }
}
