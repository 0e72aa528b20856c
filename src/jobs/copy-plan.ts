/**
 * What convert and commit copy, request by request, as qemu-img convert's
 * convert_iteration_sectors decides it: block status runs of the sources
 * (concatenated), each data (read and copied), zeros (written as zeros, or
 * nothing when the target reads as zeros) or left to the target's backing
 * file, split into requests the way qemu-img splits them, so that the
 * target's allocation comes out as qemu-img's.
 */
import { VdiskError } from '../core/errors.js';
import { strerror } from '../core/strerror.js';
import type { ProgressMeter } from '../core/progress.js';
import type { BlockDevice } from '../block/device.js';
import { plainHost, type BlockStatus } from '../block/block-status.js';
import type { ByteStore, ScanUnit } from '../block/types.js';

/** How the sources are copied into the target. */
export interface CopySettings {
  /** Zero runs at least this long (bytes) stay sparse; 0 writes every byte as data (`-S 0`). */
  readonly sparseSize: number;
  /**
   * The target already reads as zeros where nothing is written (qemu's
   * has_zero_init: a new image without a backing file, or `--target-is-zero`):
   * zero runs are then not written at all.
   */
  readonly targetIsZero: boolean;
  /**
   * Runs the source leaves unallocated are left unallocated in the target
   * too, so that the target's backing file shows through there (qemu's
   * target_has_backing: convert `-B` or `-o backing_file`, commit).
   */
  readonly targetHasBacking: boolean;
  /**
   * Which of the source's layers block status looks at: the top layer only
   * (1, as qemu-img convert asks when the target has a backing file; runs
   * the top does not allocate read as zeros only where the source has no
   * backing there), the layers above this depth (commit's base), or the
   * whole chain (undefined).
   */
  readonly statusAbove?: number | undefined;
  /**
   * Target offset where the target's backing file ends (a new target with
   * a backing file): zeros from here on are left unallocated, since the
   * target reads as zeros past its backing file anyway (qemu's
   * target_backing_sectors).
   */
  readonly backingEnd?: number | undefined;
  /** Write every unit compressed (`-c`). */
  readonly compress: boolean;
  /** Size of one compressed unit (the target's cluster size). */
  readonly unit: number;
  /**
   * The target compresses and writes runs of units at once: a compressed
   * item holds up to a buffer of whole units instead of one.
   */
  readonly compressRuns?: boolean | undefined;
  /** Largest data request. */
  readonly bufferSize: number;
  /** Requests in flight (`-m`). */
  readonly parallel: number;
  /** Write in order (default) or out of order (`-W`). */
  readonly ordered: boolean;
  /** Bytes per second written at most (`-r`); 0 = unlimited. */
  readonly rateLimit: number;
  /** Copy data runs inside the kernel where both sides allow it (`-C`). */
  readonly copyOffload?: boolean | undefined;
  /** Turn unreadable sectors into zeros instead of failing (`--salvage`), reporting each. */
  readonly salvage?: ((message: string) => void) | undefined;
  readonly signal: AbortSignal;
  readonly progress: Pick<ProgressMeter, 'advance'>;
  /** Fed every item's guest bytes as it is written (`digest`). */
  readonly digest?: { feed(offset: number, length: number, data?: Uint8Array): void } | undefined;
}

/** Where a data run's bytes sit as they are, uncompressed in a store: copied from there without the format's read path. */
export interface HostRun {
  readonly store: ByteStore;
  readonly offset: number;
  /** Every layer down to the one holding the bytes has qemu's copy_range (raw, file, qcow2): `-C` may offload them. */
  readonly copyRange: boolean;
}

/** The formats whose qemu drivers implement copy_range_from (the others answer ENOTSUP, and qemu-img stops offloading). */
const COPY_RANGE_FORMATS: ReadonlySet<string> = new Set(['raw', 'file', 'qcow2']);

/** Whether qemu could offload a read from `device`'s layer `depth`: that layer and every one above it pass copy_range on. */
function copyRangeTo(device: BlockDevice, depth: number): boolean {
  for (let i = 0; i <= depth; i++) if (!COPY_RANGE_FORMATS.has(device.layers[i]?.format ?? '')) return false;
  return true;
}

export type Item =
  | { kind: 'skip'; offset: number; length: number }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'data'; offset: number; length: number; host?: HostRun | undefined; parts?: readonly number[] | undefined; unit?: ScanUnit | undefined }
  /** Compressed units (`-c`): one, or with `compressRuns` a run of whole ones. */
  | { kind: 'unit'; offset: number; length: number };

/** qemu-img convert's three kinds of run: copy it, make it zero, or leave it to the target's backing file. */
type RunKind = 'data' | 'zero' | 'backing';

/** One block-status run being worked through (qemu's s->status up to s->sector_next_status). */
interface Run {
  kind: RunKind;
  end: number;
  start: number;
  host?: HostRun | undefined;
  /** Stored compressed (block status gives one run per compressed cluster). */
  compressed?: boolean | undefined;
  /** The span qemu's block status of the answering layer stops at (see {@link FormatImage.statusSpan}). */
  unit?: ScanUnit | undefined;
}

/** Most compressed bytes one item joins: enough to batch the decoding, little enough to keep `-m` items in flight small. */
const JOINED_COMPRESSED_BYTES = 1024 * 1024;

/** Largest block-status request (qemu's BDRV_REQUEST_MAX_BYTES). */
const MAX_REQUEST = 2 ** 31 - 512;

/** The kind of a block-status run at offset `at` (qemu's convert_iteration_sectors). */
function kindOf(st: BlockStatus, at: number, s: CopySettings): RunKind {
  if (st.zero) return s.backingEnd !== undefined && at >= s.backingEnd ? 'backing' : 'zero';
  if (st.data) return 'data';
  return s.targetHasBacking ? 'backing' : 'data';
}

/**
 * The sources of a copy, one after another (convert with several sources):
 * block status is asked of the part holding an offset, reads may span parts
 * (a compressed cluster across the end of a source).
 */
export class Concat {
  readonly size: number;
  readonly #starts: number[] = [];

  constructor(readonly parts: readonly BlockDevice[]) {
    let at = 0;
    for (const p of parts) {
      this.#starts.push(at);
      at += p.size;
    }
    this.size = at;
  }

  /** The part holding `offset` (`offset < size`), and where it starts and ends. */
  partAt(offset: number): { device: BlockDevice; start: number; end: number } {
    for (const [i, device] of this.parts.entries()) {
      const start = this.#starts[i] as number;
      if (offset < start + device.size) return { device, start, end: start + device.size };
    }
    throw new RangeError(`Offset ${offset} is past the end of the sources (${this.size} bytes)`);
  }

  /** Reads `into.length` bytes at `offset` of the concatenation. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    for (let pos = 0; pos < into.length; ) {
      const part = this.partAt(offset + pos);
      const n = Math.min(into.length - pos, part.end - (offset + pos));
      await part.device.read(offset + pos - part.start, into.subarray(pos, pos + n));
      pos += n;
    }
  }
}

/** Walks block status of the sources and yields work items in guest order. */
export function planner(src: Concat, s: CopySettings): () => Promise<Item | undefined> {
  const size = src.size;
  let offset = 0;
  let run: Run | undefined;
  const query = async (): Promise<Run> => {
    const part = src.partAt(offset);
    let length = Math.min(part.end - offset, MAX_REQUEST);
    // Zeros are handled differently past the target's backing file: a run stops there.
    if (s.backingEnd !== undefined && offset < s.backingEnd) length = Math.min(length, s.backingEnd - offset);
    const st = await status(part.device, offset - part.start, length, s);
    // Runs end on the source's allocation unit, so that the next one starts aligned (qemu's src_alignment).
    const align = Math.max(512, part.device.granularity);
    let n = st.length;
    const tail = (offset - part.start + n) % align;
    if (n > tail) n -= tail;
    const kind = kindOf(st, offset, s);
    const plain = kind === 'data' ? plainHost(st) : undefined;
    const host = plain && { ...plain, copyRange: copyRangeTo(part.device, st.depth) };
    const span = kind === 'data' ? part.device.statusSpanAt(st.depth) : undefined;
    const unit = span ? { size: span, base: part.start } : undefined;
    return { kind, start: offset, end: offset + n, host, compressed: kind === 'data' && st.compressed, unit };
  };
  /**
   * Compressed clusters come one block-status run each; the runs that follow
   * (up to a buffer) join the item, so that they are read and decoded
   * together. `parts` keeps qemu-img's one request per run for the sparse scan.
   */
  const joinCompressed = async (at: number, first: number): Promise<Item> => {
    const parts = [first];
    let length = first;
    const most = Math.min(s.bufferSize, JOINED_COMPRESSED_BYTES);
    while (length < most && offset < size) {
      if (!run || offset >= run.end) run = await query();
      if (!run.compressed) break;
      const n = Math.min(run.end - offset, most - length);
      parts.push(n);
      length += n;
      offset += n;
    }
    return { kind: 'data', offset: at, length, parts };
  };
  return async () => {
    if (offset >= size) return undefined;
    if (!run || offset >= run.end) run = await query();
    const at = offset;
    let kind = run.kind;
    let length = run.end - offset;
    // -S 0 with -c: zeros are compressed clusters too, as qemu-img writes them.
    const zerosAsUnits = s.compress && s.sparseSize === 0;
    if (kind === 'data' || (zerosAsUnits && kind === 'zero')) length = Math.min(length, s.compress && !s.compressRuns ? s.unit : s.bufferSize);
    if (s.compress) {
      // Compressed clusters are written whole: a shorter run makes its whole cluster data.
      if (length < s.unit) {
        length = Math.min(s.unit, size - offset);
        kind = 'data';
      } else {
        length = Math.floor(length / s.unit) * s.unit;
      }
    }
    offset += length;
    if (kind === 'backing') return { kind: 'skip', offset: at, length };
    if (s.compress) {
      if (kind !== 'zero' || zerosAsUnits) return { kind: 'unit', offset: at, length };
      return { kind: s.targetIsZero ? 'skip' : 'zero', offset: at, length };
    }
    if (kind === 'zero' && s.sparseSize > 0) return { kind: s.targetIsZero ? 'skip' : 'zero', offset: at, length };
    // -S 0 writes zero runs as data too, a buffer at a time.
    if (kind === 'zero') {
      length = Math.min(length, s.bufferSize);
      offset = at + length;
    }
    if (kind === 'data' && run.compressed) return joinCompressed(at, length);
    const host = kind === 'data' && run.host ? { ...run.host, offset: run.host.offset + (at - run.start) } : undefined;
    return { kind: 'data', offset: at, length, host, unit: run.unit };
  };
}

const SALVAGE_STEP = 64 * 1024;

/** Block status; in salvage mode a failure counts as a short data run (which is then read sector by sector). */
async function status(source: BlockDevice, offset: number, length: number, s: CopySettings): Promise<BlockStatus> {
  try {
    if (s.statusAbove === undefined) return await source.blockStatus(offset, length);
    if (s.statusAbove === 1) return await source.topStatus(offset, length);
    const st = await source.blockStatus(offset, length);
    return st.present && st.depth < s.statusAbove ? st : { ...st, present: false, zero: false, data: false };
  } catch (err) {
    if (s.signal.aborted) throw err;
    const message = `error while reading block status at offset ${offset}: ${err instanceof Error ? err.message : String(err)}`;
    if (!s.salvage) {
      // qemu-img convert words a block status that metadata makes fail this way, salvaging or not
      // (an I/O failure keeps its own words: vdisk's block status may read data qemu's would not)
      if (err instanceof VdiskError && err.code !== 'EABORTED' && err.code !== 'EIO') throw err.rephrase(message);
      throw err;
    }
    s.salvage(message);
    return { offset, length: Math.min(length, SALVAGE_STEP), zero: false, data: true, present: true, compressed: false, depth: 0 };
  }
}

/**
 * qemu-img convert's words for a failed read: `error while reading at byte
 * N: <why>`, N the first byte of the request. The error keeps its class and
 * code.
 */
function readError(err: unknown, offset: number): unknown {
  if (!(err instanceof VdiskError) || err.code !== 'EIO') return err;
  return err.rephrase(`error while reading at byte ${offset}: ${err.message}`);
}

/** The operating system's failure under `err` when it was a write: its errno name (`ENOSPC`). */
function failedWrite(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof VdiskError) continue;
    const { code, syscall, write } = e as { code?: unknown; syscall?: unknown; write?: unknown };
    // Native requests flag their write side; Node's file handles name the system call.
    const isWrite = write === true || syscall === 'write' || syscall === 'pwrite' || syscall === 'writev';
    return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && isWrite ? code : undefined;
  }
  return undefined;
}

/**
 * qemu-img convert's words for a failed write of the target: `error while
 * writing at byte N: <why>`, N the first byte of the request, the reason
 * the system's (a full disk, a file size limit) and no file name (the file
 * being written is vdisk's temporary one). Other errors are returned as
 * they are; the error keeps its class and code.
 */
export function writeError(err: unknown, offset: number): unknown {
  const code = err instanceof VdiskError && err.code === 'EIO' ? failedWrite(err) : undefined;
  return code && err instanceof VdiskError ? err.rephrase(`error while writing at byte ${offset}: ${strerror(code)}`) : err;
}

/** Reads `buf` at `offset`; in salvage mode retries sector by sector and zero-fills what cannot be read. */
export async function readSalvaging(source: Concat, offset: number, buf: Uint8Array, s: CopySettings): Promise<void> {
  try {
    await source.read(offset, buf);
    return;
  } catch (err) {
    if (!s.salvage || s.signal.aborted) throw readError(err, offset);
  }
  for (let pos = 0; pos < buf.length; pos += 512) {
    const sector = buf.subarray(pos, Math.min(buf.length, pos + 512));
    try {
      await source.read(offset + pos, sector);
    } catch (err) {
      sector.fill(0);
      s.salvage(`error while reading at byte ${offset + pos}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

