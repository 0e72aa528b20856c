/**
 * BlockDevice: what users hold (QEMU's BlockDriverState with its chain).
 * It checks bounds, follows the backing chain, zero-fills, and turns each
 * layer's mapping into reads and block status, so drivers describe their
 * layout once.
 */
import { CorruptImageError, InvalidArgumentError, IoError, PermissionError, UnsupportedError } from '../core/errors.js';
import { AsyncMutex } from '../core/mutex.js';
import type { OptionSpec } from '../core/options.js';
import { settleAll } from '../core/settle.js';
import { splitAt } from '../core/split.js';
import type { AmendRequest, BackingRef, ByteStore, CheckCounts, CheckRequest, Extent, FormatDescription, FormatImage, ImageBitmaps, ImageWriter, SnapshotOps, SparseRuns, SparseScan } from '../formats/driver.js';
import type { StoreIdentity } from '../io/byte-store.js';
import type { BlockStatus } from './block-status.js';
import { openChain, type ImageTarget, type OpenImageOptions } from './chain.js';
import { lockedBitmaps, lockedSnapshots } from './device-ops.js';
import { checkExtent, extentStatus, layerStatus, opaqueStatus, unallocatedStatus } from './extent-status.js';
import { readLayers } from './layer-read.js';
import { MEMO_RUNS, RunMemo } from '../formats/run-memo.js';
import type { Layer } from './layer.js';
import { probeHead } from './probe.js';
import { defaultRegistry, type DriverRegistry } from './registry.js';

const PROBE_SECTOR = 512;

/**
 * Calls `fn` once per piece of `[offset, offset+length)` the writer takes
 * (split at its {@link ImageWriter.requestBoundary}), in order; one call
 * when it declares none or the range fits in one unit.
 */
async function eachPiece(writer: ImageWriter, offset: number, length: number, fn: (at: number, pos: number, length: number) => Promise<void>): Promise<void> {
  const unit = writer.requestBoundary;
  if (unit === undefined || (offset % unit) + length <= unit) return fn(offset, 0, length);
  for (const p of splitAt(offset, length, unit)) await fn(p.offset, p.pos, p.length);
}

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
    if (top?.attachBacking && below) top.attachBacking((off, into) => readLayers(this.layers, 1, off, into), below.virtualSize);
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
    await readLayers(this.layers, 0, offset, into);
  }

  /** Writes `data` at `offset` into the top image. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#checkRange(offset, data.length);
    const writer = this.#writer();
    if (data.length === 0) return;
    const each = (fn: (at: number, piece: Uint8Array) => Promise<void>): Promise<void> => eachPiece(writer, offset, data.length, (at, pos, n) => fn(at, data.subarray(pos, pos + n)));
    if (writer.concurrentWrites && !(offset < PROBE_SECTOR && this.top.probedRaw)) return each((at, piece) => writer.write(at, piece));
    if (writer.beginWrite && !this.top.probedRaw) {
      // Only the metadata step holds the lock: the next write allocates while this data is written.
      const begin = writer.beginWrite.bind(writer);
      if (writer.requestBoundary === undefined) {
        const finish = await this.#writeLock.run(() => begin(offset, data));
        return finish();
      }
      const finishes: (() => Promise<void>)[] = [];
      await each(async (at, piece) => void finishes.push(await this.#writeLock.run(() => begin(at, piece))));
      await settleAll(finishes.map((finish) => finish()));
      return;
    }
    await this.#writeLock.run(async () => {
      if (offset < PROBE_SECTOR && this.top.probedRaw) await this.#guardProbedHead(offset, data);
      await each((at, piece) => writer.write(at, piece));
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
    const zero = (): Promise<void> => eachPiece(writer, offset, length, (at, _pos, n) => writer.writeZeroes(at, n, { mayUnmap: options.mayUnmap ?? false }));
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
    if (writer.beginWriteCompressed) {
      // Only placing the unit holds the lock: the next unit is placed while these bytes are written.
      const begin = writer.beginWriteCompressed.bind(writer);
      const finish = await this.#writeLock.run(() => begin(offset, data, compressed));
      await finish();
      return;
    }
    const wc = writer.writeCompressed.bind(writer);
    await this.#writeLock.run(() => wc(offset, data, compressed));
  }

  /**
   * Writes a run of units {@link BlockDevice.compressUnits} compressed (none
   * of them zero-skipped), for formats that can ({@link BlockDevice.canCompressRuns}).
   */
  async writeCompressedRun(offset: number, data: Uint8Array, packed: Uint8Array, sizes: Int32Array): Promise<void> {
    this.#checkRange(offset, data.length);
    const writer = this.#writer();
    if (!writer.beginWriteCompressedRun) throw new InvalidArgumentError(`Format '${this.format}' does not support compressed writes`);
    const begin = writer.beginWriteCompressedRun.bind(writer);
    // Only placing the units holds the lock: the next run is placed while these bytes are written.
    const finish = await this.#writeLock.run(() => begin(offset, data, packed, sizes));
    await finish();
  }

  /**
   * Compresses a run of whole units at once without taking the write lock
   * (see {@link vdisk/driver!ImageWriter.compressUnits | ImageWriter.compressUnits}),
   * for a later {@link BlockDevice.writeCompressedRun}.
   */
  async compressUnits(data: Uint8Array, skipZeros: boolean, out: Uint8Array, sizes: Int32Array): Promise<void> {
    const writer = this.#writer();
    if (!writer.compressUnits) throw new InvalidArgumentError(`Format '${this.format}' does not support compressed writes`);
    await writer.compressUnits(data, skipZeros, out, sizes);
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

  /**
   * Writes the data runs of the bytes `buffer` holds at `offset` with
   * convert's sparse scan, in one request (formats with a fixed layout; see
   * {@link ByteStore.writeRuns}). Undefined when it cannot: nothing was
   * written then.
   */
  async writeRuns(offset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined> {
    this.#checkRange(offset, buffer.length);
    const writer = this.#writer();
    if (!writer.writeRuns || !writer.concurrentWrites || buffer.length === 0 || (offset < PROBE_SECTOR && this.top.probedRaw)) return undefined;
    return writer.writeRuns(offset, buffer, scan);
  }

  /** Drops data in the range; it then reads from the backing file (or zeros). */
  async discard(offset: number, length: number): Promise<void> {
    this.#checkRange(offset, length);
    const writer = this.#writer();
    if (!writer.discard || length === 0) return;
    const d = writer.discard.bind(writer);
    await this.#writeLock.run(() => eachPiece(writer, offset, length, (at, _pos, n) => d(at, n)));
  }

  /**
   * The status of the run starting at `offset` (at most `length` bytes),
   * resolved through the chain.
   */
  async blockStatus(offset: number, length: number): Promise<BlockStatus> {
    return this.statusSoon(offset, length);
  }

  /**
   * {@link BlockDevice.blockStatus}'s answer when every layer it asks knows
   * its part without I/O (read-only layers keep the runs of their last table
   * walk): no await, for callers that go run by run through thousands of
   * runs. Undefined when some layer would have to look: ask blockStatus.
   */
  knownStatus(offset: number, length: number): BlockStatus | undefined {
    this.#checkRange(offset, length);
    if (length === 0) throw new InvalidArgumentError('blockStatus needs a non-empty range');
    let len = length;
    for (let depth = 0; ; depth++) {
      const image = this.layers[depth]?.image as FormatImage;
      len = Math.min(len, image.virtualSize - offset);
      if (image.opaqueStatus) return opaqueStatus(offset, len, depth);
      const e = this.#knownExtent(image, depth, offset, len);
      if (e === undefined) return undefined;
      len = e.length;
      if (e.kind !== 'unallocated') {
        // data may have to be refined by the host file's holes: known only once the layer said whether
        if (e.kind === 'data' && (e.recurse === true || this.#recurse[depth] !== false)) return undefined;
        return extentStatus(e, depth);
      }
      const below = this.layers[depth + 1]?.image;
      if (below && offset < below.virtualSize) continue;
      return unallocatedStatus(e, depth, below !== undefined);
    }
  }

  /**
   * {@link BlockDevice.knownStatus}'s answer, or {@link BlockDevice.blockStatus}'s
   * promise when some layer must look: for walkers going run by run, which
   * await only then. A failure either way is passed through `reword` first
   * (a command's wording of it).
   */
  statusSoon(offset: number, length: number, reword: (err: unknown) => unknown = (err) => err): BlockStatus | Promise<BlockStatus> {
    try {
      const known = this.knownStatus(offset, length);
      if (known) return known;
    } catch (err) {
      throw reword(err);
    }
    return this.#walkStatus(offset, length).catch((err: unknown) => {
      throw reword(err);
    });
  }

  async #walkStatus(offset: number, length: number): Promise<BlockStatus> {
    let len = length;
    for (let depth = 0; ; depth++) {
      const image = this.layers[depth]?.image as FormatImage;
      len = Math.min(len, image.virtualSize - offset);
      if (image.opaqueStatus) return opaqueStatus(offset, len, depth);
      const e = this.#knownExtent(image, depth, offset, len) ?? (await this.#firstExtent(image, depth, offset, len));
      len = e.length;
      if (e.kind !== 'unallocated') return layerStatus(e, depth, await this.#recurseAt(depth));
      const below = this.layers[depth + 1]?.image;
      if (below && offset < below.virtualSize) continue;
      // Nothing below holds the run: zeros, answered by this layer (qemu adds BDRV_BLOCK_ZERO here).
      return unallocatedStatus(e, depth, below !== undefined);
    }
  }

  /** Whether qemu's block status looks at the host file under the layer at `depth` (asked once per layer). */
  async #recurseAt(depth: number): Promise<boolean> {
    return (this.#recurse[depth] ??= (await this.layers[depth]?.image.recurseHostStatus?.()) ?? false);
  }

  /** Per layer, {@link FormatImage.recurseHostStatus}'s answer once asked. */
  readonly #recurse: (boolean | undefined)[] = [];

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
    const e = this.#knownExtent(image, 0, offset, length) ?? (await this.#firstExtent(image, 0, offset, length));
    if (e.kind === 'unallocated') {
      const below = this.layers[1]?.image;
      const zero = e.unknownContent !== true && (below === undefined || offset >= below.virtualSize);
      return { offset, length: e.length, zero, data: false, present: false, compressed: false, depth: 0 };
    }
    return layerStatus(e, 0, await this.#recurseAt(0));
  }

  // --- capabilities of the top image (what jobs ask a format for, under the write lock) ---

  /** Allocation unit of the top image (cluster, grain, block). */
  get granularity(): number {
    return this.top.image.granularity;
  }

  /** True when the top image can take compressed units ({@link BlockDevice.writeCompressed}). */
  get canCompress(): boolean {
    return this.top.image.writer?.writeCompressed !== undefined;
  }

  /** True when the top image compresses and writes runs of units at once ({@link BlockDevice.writeCompressedRun}). */
  get canCompressRuns(): boolean {
    const w = this.top.image.writer;
    return w?.compressUnits !== undefined && w.beginWriteCompressedRun !== undefined;
  }

  /** True when a new top image does not read as zeros (see {@link ImageWriter.noZeroInit}). */
  get noZeroInit(): boolean {
    return this.top.image.writer?.noZeroInit === true;
  }

  /** The format-specific `info` facts of the top image. */
  describe(): Promise<FormatDescription> {
    return this.top.image.describe();
  }

  /** Device and inode of the file of the layer at `depth` (0 = top), when its store knows them. */
  identity(depth = 0): StoreIdentity | undefined {
    return this.layers[depth]?.image.store.identity?.();
  }

  /** The layer at `depth`'s block-status span (see {@link FormatImage.statusSpan}). */
  statusSpanAt(depth: number): number | undefined {
    return this.layers[depth]?.image.statusSpan;
  }

  /** Guest-visible size of the layer at `depth` (0 = top); undefined below the bottom layer. */
  sizeAt(depth: number): number | undefined {
    return this.layers[depth]?.image.virtualSize;
  }

  /** False when the layer at `depth` cannot be reopened read/write (see {@link FormatImage.reopenable}). */
  reopenable(depth: number): boolean {
    return this.layers[depth]?.image.reopenable !== false;
  }

  /** The layer whose image file is `store` (block status names stores; map names their files). */
  layerOf(store: ByteStore | undefined): Layer | undefined {
    return store === undefined ? undefined : this.layers.find((l) => l.image.store === store);
  }

  /** True when the top image is open for writing and its format can change its size. */
  get canResize(): boolean {
    return this.top.image.resizer !== undefined;
  }

  /**
   * Sets the top image's virtual size (the caller has checked that a shrink
   * was asked for).
   *
   * @throws {UnsupportedError} EUNSUPPORTED when the format cannot resize (or the image is read-only)
   */
  async resize(size: number, options: { shrink: boolean; preallocation?: string | undefined }): Promise<void> {
    const resizer = this.#open().resizer;
    if (!resizer) throw new UnsupportedError('Image format driver does not support resize');
    await this.#writeLock.run(() => resizer.resize(size, options));
  }

  /** The `-o` options `amend` accepts for the top image; undefined when it cannot be amended (or is read-only). */
  get amendOptions(): readonly OptionSpec[] | undefined {
    return this.top.image.amender?.options;
  }

  /**
   * Changes format options of the top image in place.
   *
   * @throws {UnsupportedError} EUNSUPPORTED when the format has no amend
   */
  async amend(request: AmendRequest): Promise<void> {
    const amender = this.#open().amender;
    if (!amender) throw new UnsupportedError(`Format driver '${this.format}' does not support option amendment`);
    await this.#writeLock.run(() => amender.amend(request));
  }

  /** True when the top image's format can check its consistency. */
  get canCheck(): boolean {
    return this.top.image.checker !== undefined;
  }

  /** True when the top image's format can also repair what a check finds. */
  get canRepair(): boolean {
    return this.top.image.checker?.canRepair === true;
  }

  /**
   * Runs one consistency check pass on the top image; damage comes back as
   * counts.
   *
   * @throws {UnsupportedError} EUNSUPPORTED when the format cannot check (or repair, when asked to)
   */
  async check(request: CheckRequest): Promise<CheckCounts> {
    const checker = this.#open().checker;
    if (!checker || (request.repair !== 'none' && !checker.canRepair)) throw new UnsupportedError('This image format does not support checks');
    return this.#writeLock.run(() => checker.check(request));
  }

  /**
   * Records `ref` as the top image's backing file (undefined: standalone);
   * nothing is copied.
   *
   * @throws {UnsupportedError} EUNSUPPORTED when the format records no backing file
   */
  async setBacking(ref: BackingRef | undefined): Promise<void> {
    const writer = this.#writer();
    if (!writer.setBacking) throw new UnsupportedError('Operation not supported');
    const set = writer.setBacking.bind(writer);
    await this.#writeLock.run(() => set(ref));
  }

  /**
   * Drops every cluster the top image holds, so it reads through to its
   * backing file (commit's last step). Resolves false, doing nothing, when
   * the format cannot.
   */
  async makeEmpty(): Promise<boolean> {
    const writer = this.#writer();
    if (!writer.makeEmpty) return false;
    await this.#writeLock.run(writer.makeEmpty.bind(writer));
    return true;
  }

  /** The top image's internal snapshots (changes serialized with writes); undefined when its format has none. */
  get snapshots(): SnapshotOps | undefined {
    const ops = this.top.image.snapshots;
    return ops && lockedSnapshots(ops, this.#writeLock);
  }

  /** The top image's persistent dirty bitmaps (calls serialized with writes); undefined when its format has none. */
  get bitmaps(): ImageBitmaps | undefined {
    const bitmaps = this.top.image.bitmaps;
    return bitmaps && lockedBitmaps(bitmaps, this.#writeLock);
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

  /**
   * The layer's answer without a walk, when it has one: its own (a
   * read-only qcow2 keeps its runs; see FormatImage.knownExtent), or the
   * runs the device kept from the layer's last mapping.
   */
  #knownExtent(image: FormatImage, depth: number, offset: number, length: number): Extent | undefined {
    const e = image.knownExtent ? image.knownExtent(offset, length) : image.writer ? undefined : this.#memos[depth]?.find(offset, length);
    if (e) checkExtent(e, offset, length);
    return e;
  }

  async #firstExtent(image: FormatImage, depth: number, offset: number, length: number): Promise<Extent> {
    // Drivers without a memo of their own: a read-only layer's mapping cannot change, so the runs
    // after the first are kept for the asks that follow (block status goes run after run).
    const memo = !image.knownExtent && !image.writer;
    // A bad table past the first run fails only the ask that reaches it, as qemu's block status does.
    const extents = (memo ? await image.mapping(offset, length, MEMO_RUNS).catch(() => undefined) : undefined) ?? (await image.mapping(offset, length, 1));
    const e = extents[0];
    if (!e) throw new CorruptImageError(`Driver returned no mapping at offset ${offset}`);
    checkExtent(e, offset, length);
    if (memo) {
      // The last run may go on past where the driver stopped: known only that far.
      const last = extents[extents.length - 1] as Extent;
      (this.#memos[depth] ??= new RunMemo()).keep(extents, last.offset + last.length, image.virtualSize);
      return this.#memos[depth]?.find(offset, length) ?? e;
    }
    return e;
  }

  /** Per layer, the runs of its last mapping (layers without a memo of their own). */
  readonly #memos: (RunMemo | undefined)[] = [];

  #open(): FormatImage {
    if (this.#closed) throw new IoError(`Image '${this.filename}' is closed`);
    return this.top.image;
  }

  #writer() {
    if (this.#closed) throw new IoError(`Image '${this.filename}' is closed`);
    const w = this.top.image.writer;
    if (!w) throw new PermissionError(`Image '${this.filename}' is not open for writing`);
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
      throw new PermissionError(`Refusing to write a '${found.driver.name}' header into the first sector of '${this.filename}', whose raw format was only guessed; give the format explicitly`, {
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
