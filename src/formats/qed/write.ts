/**
 * Writing a QED image as qemu's allocating write does: new clusters go at
 * the end of the file, in crash-safe order — the need-check flag first
 * (without a backing file), then the data with its copy-on-write fill,
 * flushed when a backing file could otherwise show through, then the L2
 * entries (a new L2 table written whole, after the data), then the L1
 * entry. A crash leaves at worst leaked clusters or a flagged image that
 * the next writable open checks.
 */
import { encodeName } from '../../core/byte-names.js';
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import type { BackingRef, ImageResizer, ImageWriter } from '../driver.js';
import {
  encodeQedHeader,
  isImageSizeValid,
  QED_F_BACKING_FILE,
  QED_F_BACKING_FORMAT_NO_PROBE,
  QED_F_NEED_CHECK,
  QED_HEADER_SIZE,
  QED_ZERO_CLUSTER,
} from './header.js';
import { findRun, type ClusterRun } from './lookup.js';
import { clearNeedCheck, needsCheck, writeHeader, type QedState } from './open.js';

/** Largest buffer of copy-on-write or zero data handled at once. */
const CHUNK = 1024 * 1024;
const ZEROS = new Uint8Array(CHUNK);

export class QedWriter implements ImageWriter {
  readonly #s: QedState;

  constructor(state: QedState) {
    this.#s = state;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    for (let pos = offset, end = offset + data.length; pos < end; ) {
      const run = await findRun(s, pos, end - pos);
      const chunk = data.subarray(pos - offset, pos - offset + run.length);
      if (run.kind === 'found') await s.store.write(run.hostOffset, chunk);
      else await this.#allocate(run, chunk);
      pos += run.length;
    }
  }

  /**
   * Zeroes: whole clusters become zero-cluster entries (allocated ones are
   * overwritten in place, as qemu does); partial clusters at either end are
   * written as zero data, qemu's fallback for unaligned zero writes.
   */
  async writeZeroes(offset: number, length: number): Promise<void> {
    const cs = this.#s.g.clusterSize;
    const end = offset + length;
    const first = Math.min(end, Math.ceil(offset / cs) * cs);
    const last = Math.max(first, Math.floor(end / cs) * cs);
    await this.#zeroData(offset, first - offset);
    for (let pos = first; pos < last; ) {
      const run = await findRun(this.#s, pos, last - pos);
      if (run.kind === 'found') await this.#zeroData(pos, run.length);
      else if (run.kind !== 'zero') {
        await this.#markNeedCheck();
        await this.#link(run, QED_ZERO_CLUSTER);
      }
      pos += run.length;
    }
    await this.#zeroData(last, end - last);
  }

  /**
   * Records `ref` (or no backing file) in the header: the name right after
   * the 64 header bytes, header and name in one write, then a flush.
   *
   * @throws {UnsupportedError} "Operation not supported" when unknown compatible features are set
   * @throws {UnsupportedError} "No space left in the file header" when the name does not fit the header clusters
   */
  async setBacking(ref: BackingRef | undefined): Promise<void> {
    const s = this.#s;
    const h = s.header;
    // with an unknown compatible feature, what follows the header may not be free for a name
    if (ref && h.compatFeatures !== 0n) throw new UnsupportedError('Operation not supported');
    const name = ref ? encodeName(ref.filename) : new Uint8Array(0);
    if (QED_HEADER_SIZE + name.length > h.headerSize * h.clusterSize) {
      throw new UnsupportedError('No space left in the file header', { file: s.filename }); // qemu's ENOSPC, as qemu-img words it
    }
    let features = h.features & ~(QED_F_BACKING_FILE | QED_F_BACKING_FORMAT_NO_PROBE);
    if (ref) features |= QED_F_BACKING_FILE | (ref.format === 'raw' ? QED_F_BACKING_FORMAT_NO_PROBE : 0n);
    const next = { ...h, features, backingNameOffset: QED_HEADER_SIZE, backingNameSize: name.length };
    const bytes = new Uint8Array(QED_HEADER_SIZE + name.length);
    bytes.set(encodeQedHeader(next));
    bytes.set(name, QED_HEADER_SIZE);
    await s.store.write(0, bytes);
    await s.store.flush();
    Object.assign(h, next);
    s.backingName = ref?.filename;
  }

  /** Makes the need-check flag's promise good: data flushed, then the flag cleared (qemu does it on close and when idle). */
  async flush(): Promise<void> {
    await this.#s.store.flush();
    await clearNeedCheck(this.#s);
  }

  /** New clusters for `run` at the end of the file: fill, data, flush, then the tables. */
  async #allocate(run: ClusterRun, chunk: Uint8Array): Promise<void> {
    const s = this.#s;
    const cs = s.g.clusterSize;
    const inCluster = run.pos % cs;
    const n = Math.ceil((inCluster + run.length) / cs);
    const host = s.fileSize;
    s.fileSize += n * cs;
    await this.#markNeedCheck();
    const clusterStart = run.pos - inCluster;
    // a zero cluster's untouched bytes stay zero; only unallocated ones show the backing file
    const below = run.kind === 'zero' ? undefined : s.backingReader;
    await this.#fill(host, clusterStart, inCluster, below);
    await s.store.write(host + inCluster, chunk);
    const tail = inCluster + run.length;
    await this.#fill(host + tail, clusterStart + tail, n * cs - tail, below);
    // qemu: without this flush a crash could link a cluster whose backing bytes never landed
    if (s.backingReader) await s.store.flush();
    await this.#link(run, host);
  }

  /** Points the L2 entries of `run`'s clusters at `value` (contiguous clusters from a host offset, or the zero marker). */
  async #link(run: ClusterRun, value: number): Promise<void> {
    const s = this.#s;
    const { g } = s;
    const inCluster = run.pos % g.clusterSize;
    const n = Math.ceil((inCluster + run.length) / g.clusterSize);
    const index = Math.floor((run.pos % g.l2Span) / g.clusterSize);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = value === QED_ZERO_CLUSTER ? value : value + i * g.clusterSize;
    if (run.kind !== 'l1') {
      await s.tables.set(run.l2, index, values);
      return;
    }
    const l2 = s.fileSize;
    s.fileSize += g.tableBytes;
    await s.tables.create(l2, g.tableBytes, index, values);
    await s.tables.set(s.l1Offset, Math.floor(run.pos / g.l2Span), [l2]);
  }

  /** Copies `length` guest bytes from the backing file (or zeros) to host offset `host`. */
  async #fill(host: number, guest: number, length: number, below: QedState['backingReader']): Promise<void> {
    for (let done = 0; done < length; ) {
      const n = Math.min(CHUNK, length - done);
      if (below) {
        const buf = new Uint8Array(n);
        await below(guest + done, buf);
        await this.#s.store.write(host + done, buf);
      } else await this.#s.store.write(host + done, ZEROS.subarray(0, n));
      done += n;
    }
  }

  async #zeroData(offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; done += CHUNK) await this.write(offset + done, ZEROS.subarray(0, Math.min(CHUNK, length - done)));
  }

  /** qemu sets the flag before the first allocating write, unless a backing file makes the flush before linking enough. */
  async #markNeedCheck(): Promise<void> {
    const s = this.#s;
    if (s.backingReader || needsCheck(s)) return;
    s.header.features |= QED_F_NEED_CHECK;
    await writeHeader(s);
  }
}

/** Growing the virtual size (bdrv_qed_co_truncate): one header write; qemu refuses shrinking. */
export function qedResizer(s: QedState): ImageResizer {
  return {
    async resize(newSize, options) {
      const prealloc = options.preallocation ?? 'off';
      if (prealloc !== 'off') throw new UnsupportedError(`Unsupported preallocation mode '${prealloc}'`);
      if (!isImageSizeValid(BigInt(newSize), s.g.clusterSize, s.g.tableSize)) throw new InvalidArgumentError('Invalid image size specified');
      if (newSize < s.imageSize) throw new UnsupportedError('Shrinking images is currently not supported');
      const old = s.header.imageSize;
      s.header.imageSize = BigInt(newSize);
      try {
        await writeHeader(s);
        await s.store.flush();
      } catch (err) {
        s.header.imageSize = old;
        throw err;
      }
      s.imageSize = newSize;
    },
  };
}
