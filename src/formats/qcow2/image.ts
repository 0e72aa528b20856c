/** The open qcow2 image: mapping, compressed reads, describe, flush/close. */
import { CorruptImageError, NotFoundError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type {
  BackingReader,
  BackingRef,
  ByteStore,
  CompressedExtent,
  Extent,
  FormatDescription,
  FormatImage,
  ImageChecker,
  ImageResizer,
  ImageAmender,
  ImageWriter,
  SnapshotOps,
  UnknownFeatures,
} from '../driver.js';
import { qcow2Amender } from './amend.js';
import type { Qcow2Bitmaps } from './bitmap-ops.js';
import { TableCache } from './cache.js';
import { mapRange } from './cluster.js';
import { decompressCluster, readCompressedRun } from './compressed.js';
import { cryptExtents, describeEncrypt } from './crypt.js';
import { AUTOCLEAR_KNOWN, COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZSTD, INCOMPAT_CORRUPT, INCOMPAT_DIRTY } from './layout.js';
import { validateTable } from './open.js';
import { detectMetadataPreallocation } from './prealloc-detect.js';
import { findSnapshot, snapshotInfos } from './snapshot.js';
import { qcow2SnapshotOps } from './snapshot-ops.js';
import { MEMO_RUNS, RunMemo, cutRun } from '../run-memo.js';
import { qcow2Resizer } from './resize.js';
import type { Qcow2State } from './state.js';

/** Builds the writer for a writable image (set by index.ts to avoid an import cycle). */
export type WriterFactory = (state: Qcow2State) => Promise<ImageWriter & { flush(): Promise<void>; close(): Promise<void> }>;

/** One open qcow2 image (or a read-only view of one of its snapshots). */
/** The compatible and autoclear bits qemu does not know (it ignores them; the inspector reports them). */
function unknownFeatures(h: Qcow2State['header']): UnknownFeatures | undefined {
  const compatible = h.compatible & ~BigInt(COMPAT_LAZY_REFCOUNTS);
  const autoclear = h.autoclear & ~BigInt(AUTOCLEAR_KNOWN);
  if (compatible === 0n && autoclear === 0n) return undefined;
  return { compatible: compatible ? compatible.toString(16) : undefined, autoclear: autoclear ? autoclear.toString(16) : undefined };
}

export class Qcow2Image implements FormatImage {
  readonly format = 'qcow2';
  readonly store: ByteStore;
  readonly granularity: number;
  readonly #s: Qcow2State;
  #writer: (ImageWriter & { flush(): Promise<void>; close(): Promise<void> }) | undefined;
  /** Consistency check and repair (set by the driver; absent on snapshot views). */
  checker: ImageChecker | undefined;
  /** Persistent dirty bitmaps (set by the driver from bitmap-ops.ts; absent on snapshot views). */
  bitmaps: Qcow2Bitmaps | undefined;
  readonly #ownsStore: boolean;
  #closed = false;
  #recurse: Promise<boolean> | undefined;
  #snapshotOps: SnapshotOps | undefined;
  #resizer: ImageResizer | undefined;

  constructor(state: Qcow2State, ownsStore = true) {
    this.#s = state;
    this.#ownsStore = ownsStore;
    this.store = state.store;
    this.granularity = state.g.clusterSize;
  }

  /** Attaches the writer (called once by the driver for read/write opens). */
  async enableWrites(factory: WriterFactory): Promise<void> {
    this.#writer = await factory(this.#s);
  }

  get writer(): ImageWriter | undefined {
    return this.#writer;
  }

  // Snapshot and resize: capability objects built in snapshot-ops.ts / resize.ts.
  /** Internal snapshots (mutators only when writable). */
  get snapshots(): SnapshotOps {
    return (this.#snapshotOps ??= qcow2SnapshotOps(this));
  }

  /** Changing the virtual size (writable images only). */
  get resizer(): ImageResizer | undefined {
    return this.#writer ? (this.#resizer ??= qcow2Resizer(this)) : undefined;
  }

  // Rebase and amend: the header's backing file as it is now; amend in amend.ts.
  /** The backing file recorded in the header (follows rebase's setBacking). */
  get backing(): BackingRef | undefined {
    const h = this.#s.header;
    return h.backingFile === undefined ? undefined : { filename: h.backingFile, format: h.backingFormat };
  }

  /** Changing options in place (writable images only). */
  get amender(): ImageAmender | undefined {
    const w = this.#writer as (ImageWriter & { flush(): Promise<void>; retire?(reason: Error): void }) | undefined;
    if (!w) return undefined;
    const metadataMoved = (): void => (w as { resetMetadata?(): void }).resetMetadata?.();
    return qcow2Amender({ state: this.#s, flush: () => w.flush(), retire: (r) => w.retire?.(r), metadataMoved, resizer: () => this.resizer });
  }

  get virtualSize(): number {
    return this.#s.virtualSize;
  }

  /** The image's state (for the snapshot and test helpers in this folder). */
  get state(): Qcow2State {
    return this.#s;
  }

  async mapping(offset: number, length: number, maxExtents?: number): Promise<readonly Extent[]> {
    const s = this.#s;
    // Block status asks one extent at a time, run after run: a read-only image's tables do not
    // change, so one walk keeps the runs that follow for the asks to come (see run-memo.ts).
    if (maxExtents === 1 && this.#memoOn()) {
      const hit = this.#memo.find(offset, length);
      if (hit) return [hit];
      // The walk goes on past the ask, to the end of the table after the one the ask ends in: asks
      // below a backing chain's upper layer are as short as that layer's runs, and map's asks slide
      // a window of 1 GiB along a run; a walk for each would cost the ask. (At most two more table reads.)
      const tableBytes = s.g.l2Entries * s.g.clusterSize;
      const end = Math.min((Math.floor((offset + length - 1) / tableBytes) + 2) * tableBytes, s.virtualSize);
      const extents = await mapRange(s, offset, end - offset, MEMO_RUNS).catch(() => undefined);
      if (extents) {
        this.#memo.keep(extents, end, s.virtualSize);
        return [this.#memo.find(offset, length) ?? cutRun(extents[0] as Extent, offset, length)];
      }
      // A bad table past the first run fails only the ask that reaches it, as qemu's block status does,
      // which answers no further than the end of the L2 table it looked in.
      const tableEnd = (Math.floor(offset / tableBytes) + 1) * tableBytes;
      return (await mapRange(s, offset, Math.min(length, tableEnd - offset), 1)).slice(0, 1);
    }
    const extents = await mapRange(s, offset, length, maxExtents);
    return s.crypt ? cryptExtents(extents, s.crypt, s.rawDataStore ?? s.dataStore) : extents;
  }

  /** The first extent of a range when the last walk already found it (read-only images): no I/O, no await. */
  knownExtent(offset: number, length: number): Extent | undefined {
    return this.#memoOn() ? this.#memo.find(offset, length) : undefined;
  }

  /** Tables that cannot change under the memo: no writer; encrypted extents are rewritten per call. */
  #memoOn(): boolean {
    return !this.#writer && !this.#s.crypt;
  }

  readonly #memo = new RunMemo();

  async readCompressed(extent: CompressedExtent, unit: Uint8Array): Promise<void> {
    const max = 2 * this.#s.g.clusterSize;
    if (extent.hostLength > max || extent.hostLength <= 0) {
      throw new CorruptImageError(`Compressed cluster at host offset 0x${extent.hostOffset.toString(16)} has an invalid size`);
    }
    const input = new Uint8Array(extent.hostLength);
    await this.#s.store.read(extent.hostOffset, input);
    await decompressCluster(this.#s.header.compressionType, input, unit.subarray(0, this.#s.g.clusterSize), extent.hostOffset);
  }

  /** Decodes consecutive compressed extents into `into` (which they cover), nearby clusters read and decoded together. */
  readCompressedRun(extents: readonly CompressedExtent[], into: Uint8Array): Promise<void> {
    return readCompressedRun(this.#s.store, this.#s.header.compressionType, this.#s.g.clusterSize, extents, into);
  }

  /**
   * qemu reports host-file holes inside data clusters only for images that
   * look metadata-preallocated (judged on the image file; with an external
   * data file the holes asked about are the data file's).
   */
  recurseHostStatus(): Promise<boolean> {
    this.#recurse ??= detectMetadataPreallocation(this.#s);
    return this.#recurse;
  }

  attachBacking(reader: BackingReader | undefined, size?: number): void {
    this.#s.backingReader = reader;
    this.#s.backingSize = reader ? size : undefined;
  }

  async describe(): Promise<FormatDescription> {
    const s = this.#s;
    const h = s.header;
    const bit = (w: bigint, b: number): boolean => (w & BigInt(b)) !== 0n;
    const data: Record<string, unknown> = { compat: h.version === 2 ? '0.10' : '1.1' };
    if (h.version === 3) {
      if (s.externalData) {
        data['data-file'] = h.dataFile;
        data['data-file-raw'] = s.dataFileRaw;
      }
      data['extended-l2'] = s.g.extendedL2;
      data['lazy-refcounts'] = bit(h.compatible, COMPAT_LAZY_REFCOUNTS);
      data['corrupt'] = bit(h.incompatible, INCOMPAT_CORRUPT);
    }
    data['refcount-bits'] = s.g.refcountBits;
    if (s.crypt) data['encrypt'] = describeEncrypt(s.crypt);
    if (s.bitmaps.length) data['bitmaps'] = s.bitmaps.map((b) => ({ name: b.name, granularity: b.granularity, flags: [...b.flags] }));
    data['compression-type'] = h.compressionType === COMPRESSION_ZSTD ? 'zstd' : 'zlib';
    return {
      clusterSize: s.g.clusterSize,
      dirty: bit(h.incompatible, INCOMPAT_DIRTY),
      encrypted: s.crypt !== undefined,
      snapshots: snapshotInfos(s.snapshots),
      formatSpecific: { type: 'qcow2', data },
      unknownFeatures: unknownFeatures(h),
    };
  }

  /**
   * A read-only view of internal snapshot `idOrName` (by id first, then
   * name), for `convert -l`. It shares this image's store; do not close it
   * after this image.
   *
   * @throws {NotFoundError} when no snapshot matches
   */
  async openSnapshot(idOrName: string): Promise<Qcow2Image> {
    const s = this.#s;
    const sn = findSnapshot(s.snapshots, idOrName);
    if (!sn) throw new NotFoundError(`Failed to load snapshot: Can't find snapshot`, { data: { snapshot: idOrName } });
    if (sn.l1Size > LIMITS.qcow2MaxL1Bytes / 8) throw new CorruptImageError('Snapshot L1 table too large');
    validateTable(s.g, sn.l1TableOffset, sn.l1Size, 8, LIMITS.qcow2MaxL1Bytes, 'Snapshot L1 table');
    const size = sn.diskSize ?? s.header.size;
    if (Math.ceil(size / s.g.clusterSize / s.g.l2Entries) > sn.l1Size) throw new CorruptImageError('Snapshot L1 table is too small');
    const l1Bytes = new Uint8Array(sn.l1Size * 8);
    await s.store.read(sn.l1TableOffset, l1Bytes);
    const view: Qcow2State = {
      ...s,
      l1Bytes,
      l1: new DataView(l1Bytes.buffer),
      l1Size: sn.l1Size,
      // qemu's load_tmp swaps in the snapshot's L1 table but keeps the disk size: `convert -l` and
      // `measure -l` cover the current size, and what lies past the snapshot's tables reads through.
      virtualSize: s.virtualSize,
      l2Cache: new TableCache(s.store, s.g.clusterSize, LIMITS.qcow2L2CacheBytes, { recycle: true }), // a read-only view
      refcounts: undefined,
      ownedStores: [],
      backingReader: undefined,
      backingSize: undefined,
    };
    return new Qcow2Image(view, false);
  }

  async flush(): Promise<void> {
    if (this.#writer) await this.#writer.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#writer) await this.#writer.close();
    } finally {
      await Promise.allSettled(this.#s.ownedStores.map((st) => st.close()));
      if (this.#ownsStore) await this.#s.store.close();
    }
  }
}
