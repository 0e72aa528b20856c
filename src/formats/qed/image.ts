/**
 * An open QED image: mapping (data, zero clusters, and unallocated runs
 * that read through to the backing file), `info` facts, and the writer,
 * resizer and checker of ./write.ts and ./check.ts.
 */
import type {
  BackingReader,
  BackingRef,
  ByteStore,
  Extent,
  FormatDescription,
  FormatImage,
  ImageChecker,
  ImageResizer,
} from '../driver.js';
import { qedChecker } from './check.js';
import { QED_F_BACKING_FORMAT_NO_PROBE } from './header.js';
import { findRun } from './lookup.js';
import type { QedState } from './open.js';
import { QedWriter, qedResizer } from './write.js';

/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 256;

function push(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  if (last && last.kind === e.kind && last.offset + last.length === e.offset) {
    const contiguous = last.kind !== 'data' || (e.kind === 'data' && last.hostOffset + last.length === e.hostOffset);
    if (contiguous && last.kind !== 'compressed') {
      out[out.length - 1] = { ...last, length: last.length + e.length };
      return;
    }
  }
  out.push(e);
}

export class QedImage implements FormatImage {
  readonly format = 'qed';
  readonly store: ByteStore;
  readonly granularity: number;
  readonly writer: QedWriter | undefined;
  readonly resizer: ImageResizer | undefined;
  readonly checker: ImageChecker;
  readonly #s: QedState;
  #closed = false;

  constructor(state: QedState, writable: boolean) {
    this.#s = state;
    this.store = state.store;
    this.granularity = state.g.clusterSize;
    this.writer = writable ? new QedWriter(state) : undefined;
    this.resizer = writable ? qedResizer(state) : undefined;
    this.checker = qedChecker(state);
  }

  get virtualSize(): number {
    return this.#s.imageSize;
  }

  /** The backing file the header names (follows rebase); a raw one when the no-probe bit is set. */
  get backing(): BackingRef | undefined {
    const s = this.#s;
    if (s.backingName === undefined) return undefined;
    return { filename: s.backingName, format: (s.header.features & QED_F_BACKING_FORMAT_NO_PROBE) !== 0n ? 'raw' : undefined };
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.#s.backingReader = reader;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const s = this.#s;
    const out: Extent[] = [];
    // stop once the extents the caller uses are complete (the next one has begun)
    for (let pos = offset, end = offset + length; pos < end && out.length < MAX_EXTENTS && out.length <= maxExtents; ) {
      let run;
      try {
        run = await findRun(s, pos, end - pos);
      } catch (err) {
        // what precedes a bad entry is still reported (qemu fails only the request that reaches it)
        if (out.length > 0) break;
        throw err;
      }
      const n = run.length;
      if (run.kind === 'found') push(out, { kind: 'data', offset: pos, length: n, store: s.store, hostOffset: run.hostOffset });
      else if (run.kind === 'zero') push(out, { kind: 'zero', offset: pos, length: n, allocated: false });
      else push(out, { kind: 'unallocated', offset: pos, length: n });
      pos += n;
    }
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  async describe(): Promise<FormatDescription> {
    const h = this.#s.header;
    const compatible = h.compatFeatures ? h.compatFeatures.toString(16) : undefined;
    const autoclear = h.autoclearFeatures ? h.autoclearFeatures.toString(16) : undefined;
    return {
      clusterSize: this.#s.g.clusterSize,
      // qemu 7.2 never reports the need-check flag: its timer clears the flag in memory at the first drain after open
      dirty: false,
      unknownFeatures: compatible || autoclear ? { compatible, autoclear } : undefined,
    };
  }

  async flush(): Promise<void> {
    if (this.writer) await this.writer.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.writer) await this.writer.flush();
    } finally {
      await this.#s.store.close();
    }
  }
}
