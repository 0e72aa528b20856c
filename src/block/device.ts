/**
 * BlockDevice: what users hold (QEMU's BlockDriverState with its chain).
 * It checks bounds, follows the backing chain, zero-fills, and turns each
 * layer's mapping into reads and block status, so drivers describe their
 * layout once.
 */
import { CorruptImageError, InvalidArgumentError, IoError, VdiskError } from '../core/errors.js';
import { AsyncMutex } from '../core/mutex.js';
import { settleAll } from '../core/settle.js';
import type { ByteStore, CompressedExtent, Extent, FormatImage, SparseRuns, SparseScan, UnallocatedExtent } from '../formats/driver.js';
import type { BlockStatus } from './block-status.js';
import { openChain, type ImageTarget, type OpenImageOptions } from './chain.js';
import type { Layer } from './layer.js';
import { probeHead } from './probe.js';
import { defaultRegistry, type DriverRegistry } from './registry.js';

const PROBE_SECTOR = 512;

/**
 * An open image with its backing chain.
 *
 * @example
 * ```ts
 * await using dev = await BlockDevice.open('disk.qcow2');
 * const buf = new Uint8Array(4096);
 * await dev.read(0, buf);
 * ```
 */
export class BlockDevice {
  /** The chain, top first. */
  readonly layers: readonly Layer[];
  readonly #registry: DriverRegistry;
  readonly #writeLock = new AsyncMutex();
  #closed = false;

  private constructor(layers: Layer[], registry: DriverRegistry) {
    this.layers = layers;
    this.#registry = registry;
    const top = layers[0]?.image;
    const below = layers[1]?.image;
    if (top?.attachBacking && below) top.attachBacking((off, into) => this.#readLayer(1, off, into), below.virtualSize);
  }

  /**
   * Opens an image (a path or a ByteStore) and its backing chain.
   *
   * @throws {NotFoundError} ENOENT, {@link UnknownFormatError} EFORMAT, {@link CorruptImageError} ECORRUPT,
   *   {@link BackingLoopError} ELOOP, {@link ChainDepthError} EDEPTH, {@link UnsafeReferenceError} EUNSAFE
   */
  static async open(target: ImageTarget, options: OpenImageOptions = {}): Promise<BlockDevice> {
    const layers = await openChain(target, options);
    return new BlockDevice(layers, options.registry ?? defaultRegistry);
  }

  /**
   * A device over this chain from `depth` down (commit's base and the files
   * below it), sharing this device's open images. It can be written when the
   * layer at `depth` was opened writable (`writableDepth`). Close this
   * device, not the view (closing either closes the shared images).
   */
  below(depth: number): BlockDevice {
    if (!Number.isInteger(depth) || depth < 0 || depth >= this.layers.length) throw new InvalidArgumentError(`No layer at depth ${depth}`);
    return depth === 0 ? this : new BlockDevice(this.layers.slice(depth), this.#registry);
  }

  /** The top layer. */
  get top(): Layer {
    const top = this.layers[0];
    if (!top) throw new IoError('Block device has no layers');
    return top;
  }

  /** Guest-visible size of the top image. */
  get size(): number {
    return this.top.image.virtualSize;
  }

  /** Name the top image was opened under. */
  get filename(): string {
    return this.top.filename;
  }

  /** Format of the top image. */
  get format(): string {
    return this.top.format;
  }

  /** True when the top image can be written. */
  get writable(): boolean {
    return this.top.image.writer !== undefined;
  }

  /** Reads `into.length` bytes at `offset`. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    this.#checkRange(offset, into.length);
    await this.#readLayer(0, offset, into);
  }

  /** Writes `data` at `offset` into the top image. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#checkRange(offset, data.length);
    const writer = this.#writer();
    if (data.length === 0) return;
    if (writer.concurrentWrites && !(offset < PROBE_SECTOR && this.top.probedRaw)) return writer.write(offset, data);
    if (writer.beginWrite && !this.top.probedRaw) {
      // Only the metadata step holds the lock: the next write allocates while this data is written.
      const begin = writer.beginWrite.bind(writer);
      const finish = await this.#writeLock.run(() => begin(offset, data));
      return finish();
    }
    await this.#writeLock.run(async () => {
      if (offset < PROBE_SECTOR && this.top.probedRaw) await this.#guardProbedHead(offset, data);
      await writer.write(offset, data);
    });
  }

  /** True when guest write order does not shape the image's layout (see {@link vdisk/driver!ImageWriter.fixedLayout | ImageWriter.fixedLayout}). */
  get fixedLayout(): boolean {
    return this.top.image.writer?.fixedLayout === true;
  }

  /** Makes `[offset, offset+length)` read as zeros. */
  async writeZeroes(offset: number, length: number, options: { mayUnmap?: boolean } = {}): Promise<void> {
    this.#checkRange(offset, length);
    const writer = this.#writer();
    if (length === 0) return;
    const zero = (): Promise<void> => writer.writeZeroes(offset, length, { mayUnmap: options.mayUnmap ?? false });
    await (writer.concurrentWrites ? zero() : this.#writeLock.run(zero));
  }

  /**
   * Writes one compressed unit (for formats that can). `compressed` is what
   * {@link BlockDevice.compressUnit} returned for the same data.
   */
  async writeCompressed(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<void> {
    this.#checkRange(offset, data.length);
    const writer = this.#writer();
    if (!writer.writeCompressed) throw new InvalidArgumentError(`Format '${this.format}' does not support compressed writes`);
    const wc = writer.writeCompressed.bind(writer);
    await this.#writeLock.run(() => wc(offset, data, compressed));
  }

  /**
   * Compresses a unit for a later {@link BlockDevice.writeCompressed}
   * without taking the write lock, so many units compress at once (every
   * core, through the thread pool). Undefined when the format compresses
   * only while writing.
   */
  async compressUnit(data: Uint8Array): Promise<Uint8Array | null | undefined> {
    const writer = this.#writer();
    return writer.compressUnit ? writer.compressUnit(data) : undefined;
  }

  /**
   * Copies `length` guest bytes at `offset` from `source` at `sourceOffset`
   * inside the kernel when the format and stores allow (copy offload).
   * Returns false when they do not; nothing was written then.
   */
  async copyFrom(offset: number, length: number, source: ByteStore, sourceOffset: number): Promise<boolean> {
    this.#checkRange(offset, length);
    const writer = this.#writer();
    if (!writer.copyFrom || length === 0) return false;
    const copy = writer.copyFrom.bind(writer);
    return this.#writeLock.run(() => copy(offset, length, source, sourceOffset));
  }

  /**
   * Copies `length` guest bytes at `offset` from `source` at `sourceOffset`
   * through `buffer` with convert's sparse scan, writing the data runs in
   * the same request (formats with a fixed layout; see
   * {@link ByteStore.copyRuns}). Undefined when it cannot: nothing was
   * written then.
   */
  async copyRuns(offset: number, length: number, source: ByteStore, sourceOffset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined> {
    this.#checkRange(offset, length);
    const writer = this.#writer();
    // The first sector of a probed raw image is guarded (see #guardProbedHead): those writes go the long way.
    if (!writer.copyRuns || !writer.concurrentWrites || length === 0 || (offset < PROBE_SECTOR && this.top.probedRaw)) return undefined;
    return writer.copyRuns(offset, source, sourceOffset, buffer, length, scan);
  }

  /** Drops data in the range; it then reads from the backing file (or zeros). */
  async discard(offset: number, length: number): Promise<void> {
    this.#checkRange(offset, length);
    const writer = this.#writer();
    if (!writer.discard || length === 0) return;
    const d = writer.discard.bind(writer);
    await this.#writeLock.run(() => d(offset, length));
  }

  /**
   * The status of the run starting at `offset` (at most `length` bytes),
   * resolved through the chain.
   */
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    this.#checkRange(offset, length);
    if (length === 0) throw new InvalidArgumentError('blockStatus needs a non-empty range');
    let len = length;
    for (let depth = 0; ; depth++) {
      const image = this.layers[depth]?.image as FormatImage;
      len = Math.min(len, image.virtualSize - offset);
      if (image.opaqueStatus) return opaqueStatus(offset, len, depth);
      const e = await this.#firstExtent(image, offset, len);
      len = e.length;
      if (e.kind !== 'unallocated') return layerStatus(image, e, depth);
      const below = this.layers[depth + 1]?.image;
      if (below && offset < below.virtualSize) continue;
      // Nothing below holds the run: zeros, answered by this layer (qemu adds BDRV_BLOCK_ZERO here).
      return unallocatedStatus(e, depth, below !== undefined);
    }
  }

  /**
   * The status of a run in the top layer only (as with `-B`: what the top
   * image itself allocates). Unallocated runs come back with `present: false`,
   * and read as zeros (`zero`) when they start where no backing file is, as
   * qemu's block status of one layer says.
   */
  async topStatus(offset: number, length: number): Promise<BlockStatus> {
    this.#checkRange(offset, length);
    const image = this.top.image;
    if (image.opaqueStatus) return opaqueStatus(offset, length, 0);
    const e = await this.#firstExtent(image, offset, length);
    if (e.kind === 'unallocated') {
      const below = this.layers[1]?.image;
      const zero = below === undefined || offset >= below.virtualSize;
      return { offset, length: e.length, zero, data: false, present: false, compressed: false, depth: 0 };
    }
    return layerStatus(image, e, 0);
  }

  /** Writes back caches and flushes every writable layer. */
  async flush(): Promise<void> {
    if (this.writable) await this.top.image.flush();
  }

  /** Flushes and closes every layer (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await settleAll(this.layers.map((l) => l.image.close()));
  }

  /** Closes the device (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #readLayer(depth: number, offset: number, into: Uint8Array): Promise<void> {
    const image = this.layers[depth]?.image;
    if (!image || offset >= image.virtualSize) {
      into.fill(0);
      return;
    }
    const end = Math.min(into.length, image.virtualSize - offset);
    if (end < into.length) into.fill(0, end);
    let pos = 0;
    while (pos < end) {
      const extents = await image.mapping(offset + pos, end - pos);
      if (extents.length === 0) throw new CorruptImageError(`Driver returned no mapping at offset ${offset + pos}`);
      for (let i = 0; i < extents.length; i++) {
        const e = extents[i] as Extent;
        checkExtent(e, offset + pos, end - pos);
        if (e.kind === 'compressed' && image.readCompressedRun) {
          // Consecutive compressed units are decoded together (in parallel) rather than one by one.
          const run = compressedRun(extents, i, offset + pos, end - pos);
          await image.readCompressedRun(run.extents, into.subarray(pos, pos + run.length));
          pos += run.length;
          i += run.extents.length - 1;
          continue;
        }
        const sub = into.subarray(pos, pos + e.length);
        switch (e.kind) {
          case 'data':
            await e.store.read(e.hostOffset, sub);
            break;
          case 'zero':
            sub.fill(0);
            break;
          case 'unallocated':
            await this.#readLayer(depth + 1, e.offset, sub);
            break;
          case 'compressed':
            await this.#readCompressed(image, e, sub);
            break;
        }
        pos += e.length;
      }
    }
  }

  async #readCompressed(image: FormatImage, e: CompressedExtent, into: Uint8Array): Promise<void> {
    if (image.readCompressedPart) return image.readCompressedPart(e, into);
    if (!image.readCompressed) throw new CorruptImageError(`Format '${image.format}' reported a compressed extent it cannot read`);
    const unit = new Uint8Array(image.granularity);
    await image.readCompressed(e, unit);
    const start = e.offset - e.unitOffset;
    into.set(unit.subarray(start, start + into.length));
  }

  async #firstExtent(image: FormatImage, offset: number, length: number): Promise<Extent> {
    const extents = await image.mapping(offset, length, 1);
    const e = extents[0];
    if (!e) throw new CorruptImageError(`Driver returned no mapping at offset ${offset}`);
    checkExtent(e, offset, length);
    return e;
  }

  #writer() {
    if (this.#closed) throw new IoError(`Image '${this.filename}' is closed`);
    const w = this.top.image.writer;
    if (!w) throw new VdiskError('EPERM', 'user', `Image '${this.filename}' is not open for writing`);
    return w;
  }

  /**
   * qemu refuses writes that would make a probed raw image probe as another
   * format. It probes the new first sector (zero-padded) without a file
   * name, so name-only matches (dmg) do not count.
   */
  async #guardProbedHead(offset: number, data: Uint8Array): Promise<void> {
    const head = new Uint8Array(PROBE_SECTOR);
    await this.read(0, head.subarray(0, Math.min(PROBE_SECTOR, this.size)));
    const n = Math.min(data.length, head.length - offset);
    head.set(data.subarray(0, n), offset);
    const found = probeHead(head, '', this.#registry);
    if (found && found.driver.name !== 'raw') {
      throw new VdiskError('EPERM', 'user', `Refusing to write a '${found.driver.name}' header into the first sector of '${this.filename}', whose raw format was only guessed; give the format explicitly`, {
        file: this.filename,
        offset: 0,
      });
    }
  }

  #checkRange(offset: number, length: number): void {
    if (this.#closed) throw new IoError(`Image '${this.filename}' is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`Invalid request: offset ${offset}, length ${length}`);
    }
    if (offset + length > this.size) {
      throw new InvalidArgumentError(`Request [${offset}, ${offset + length}) is beyond the end of '${this.filename}' (${this.size} bytes)`);
    }
  }
}

/** The compressed extents from `extents[i]` on, up to the first of another kind, each checked like any extent. */
function compressedRun(extents: readonly Extent[], i: number, offset: number, length: number): { extents: CompressedExtent[]; length: number } {
  const run: CompressedExtent[] = [];
  let n = 0;
  for (let k = i; k < extents.length; k++) {
    const e = extents[k] as Extent;
    if (e.kind !== 'compressed') break;
    checkExtent(e, offset + n, length - n);
    run.push(e);
    n += e.length;
  }
  return { extents: run, length: n };
}

/** What a layer's allocated extent says, refined by the host file's holes where qemu recurses. */
async function layerStatus(image: FormatImage, e: Exclude<Extent, { kind: 'unallocated' }>, depth: number): Promise<BlockStatus> {
  const st = statusOf(e, depth);
  const recurse = (e.kind === 'data' && e.recurse === true) || (await image.recurseHostStatus?.());
  return recurse ? refineByHost(st) : st;
}

/** qemu's answer for drivers without block status: all allocated data, no host offset. */
function opaqueStatus(offset: number, length: number, depth: number): BlockStatus {
  return { offset, length, zero: false, data: true, present: true, compressed: false, depth };
}

/**
 * Data whose host bytes sit in a hole of the host file reads as zeros: say
 * so (and stop the run where the hole ends), as qemu's block status asks the
 * protocol layer below a format.
 */
async function refineByHost(st: BlockStatus): Promise<BlockStatus> {
  if (!st.data || st.zero || st.compressed || !st.store?.extents || st.hostOffset === undefined) return st;
  const host = (await st.store.extents(st.hostOffset, st.length))?.[0];
  if (!host || host.offset !== st.hostOffset || host.length <= 0) return st;
  return { ...st, length: Math.min(st.length, host.length), zero: !host.data };
}

/** A run no layer holds, as the layer at `depth` (the last one asked) reports it. */
function unallocatedStatus(e: UnallocatedExtent, depth: number, pastBackingEnd: boolean): BlockStatus {
  const host = e.hostOffset !== undefined && e.store ? { store: e.store, hostOffset: e.hostOffset } : {};
  return { offset: e.offset, length: e.length, zero: true, data: false, present: false, compressed: false, depth, ...host, ...(pastBackingEnd ? { pastBackingEnd } : {}) };
}

function statusOf(e: Exclude<Extent, { kind: 'unallocated' }>, depth: number): BlockStatus {
  switch (e.kind) {
    case 'data':
      return { offset: e.offset, length: e.length, zero: false, data: true, present: true, compressed: false, depth, ...(e.opaque ? {} : { store: e.store, hostOffset: e.hostOffset }) };
    case 'zero':
      return { offset: e.offset, length: e.length, zero: true, data: false, present: true, compressed: false, depth, store: e.allocated ? e.store : undefined, hostOffset: e.allocated ? e.hostOffset : undefined };
    case 'compressed':
      return { offset: e.offset, length: e.length, zero: false, data: true, present: true, compressed: true, depth };
  }
}

/** Drivers are trusted code but their output decides reads: a bad extent is a bug, stop loudly. */
function checkExtent(e: Extent, offset: number, maxLength: number): void {
  if (e.offset !== offset || !(e.length > 0) || e.length > maxLength) {
    throw new CorruptImageError(`Inconsistent mapping: expected an extent at ${offset} of at most ${maxLength} bytes, got [${e.offset}, +${e.length})`);
  }
}
