/**
 * An open VMDK image: extents in guest order, mapping dispatched per
 * extent, parent CID checked before reading through to the parent.
 */
import { CorruptImageError } from '../../core/errors.js';
import { settleAll } from '../../core/settle.js';
import type {
  BackingReader,
  BackingRef,
  ByteStore,
  CompressedExtent,
  Extent,
  ExternalFiles,
  FormatDescription,
  FormatImage,
  ImageChecker,
  ImageWriter,
} from '../driver.js';
import { checkParentCid } from './cid.js';
import { type ExtentHandle, findExtent, isFlat, mapExtent } from './extent.js';
import type { OpenedVmdk } from './open.js';
import { SECTOR } from './layout.js';

export class VmdkImage implements FormatImage {
  readonly format = 'vmdk';
  readonly store: ByteStore;
  readonly virtualSize: number;
  readonly granularity: number;
  readonly statusSpan: number | undefined;
  readonly backing: BackingRef | undefined;
  readonly state: OpenedVmdk;
  writer: ImageWriter | undefined;
  /** `qemu-img check` (set by the driver). */
  checker: ImageChecker | undefined;
  readonly #external: ExternalFiles;
  readonly #filename: string;
  #backingReader: BackingReader | undefined;
  #parentChecked = false;
  #closed = false;

  constructor(store: ByteStore, state: OpenedVmdk, external: ExternalFiles, filename: string) {
    this.store = store;
    this.state = state;
    this.#external = external;
    this.#filename = filename;
    const last = state.extents[state.extents.length - 1];
    this.virtualSize = last ? last.start + last.length : 0;
    this.granularity = state.extents.find((e) => e.sparse)?.sparse?.geom.grainBytes ?? SECTOR;
    // vmdk_co_block_status answers one grain (a flat extent whole): set where every extent is sparse with one grain size.
    const grains = new Set(state.extents.map((e) => e.sparse?.geom.grainBytes));
    this.statusSpan = grains.size === 1 && !grains.has(undefined) ? this.granularity : undefined;
    this.backing = state.parentFileNameHint === undefined ? undefined : { filename: state.parentFileNameHint, format: 'vmdk' };
  }

  get extents(): readonly ExtentHandle[] {
    return this.state.extents;
  }

  /** As qemu's vmdk_co_get_allocated_file_size: the descriptor's file plus each extent's other file (once per extent line). */
  async allocatedSize(): Promise<number | undefined> {
    let total = await this.store.allocatedSize?.();
    for (const e of this.state.extents) {
      if (total === undefined || !e.store || e.store === this.store) continue;
      const n = await e.store.allocatedSize?.();
      total = n === undefined ? undefined : total + n;
    }
    return total;
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.#backingReader = reader;
  }

  /** The copy-on-write source, after the parent CID check (undefined without a parent). */
  async cowReader(): Promise<BackingReader | undefined> {
    const r = this.#backingReader;
    if (r) await this.#checkParent();
    return r;
  }

  async #checkParent(): Promise<void> {
    if (this.#parentChecked || !this.backing) return;
    await checkParentCid(this.#external, this.backing.filename, this.state.parentCid, this.#filename);
    this.#parentChecked = true;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const e = findExtent(this.state.extents, offset);
    if (!e) throw new CorruptImageError(`No VMDK extent holds guest offset ${offset}`, { file: this.#filename });
    if (e.compressedWriter) await e.compressedWriter.flushPending();
    const all = await mapExtent(e, offset, length, maxExtents);
    const out = all.length > maxExtents ? all.slice(0, maxExtents) : all;
    if (this.#backingReader && out.some((x) => x.kind === 'unallocated')) await this.#checkParent();
    return out;
  }

  async readCompressed(extent: CompressedExtent, unit: Uint8Array): Promise<void> {
    const e = findExtent(this.state.extents, extent.unitOffset);
    if (!e?.sparse) throw new CorruptImageError(`No compressed VMDK extent holds guest offset ${extent.unitOffset}`, { file: this.#filename });
    const gi = (extent.unitOffset - e.start) / e.sparse.geom.grainBytes;
    await e.sparse.readCompressed(extent.hostOffset, gi, unit);
  }

  /** Inflates consecutive compressed extents into `into` (which they cover), a VMDK extent at a time. */
  async readCompressedRun(extents: readonly CompressedExtent[], into: Uint8Array): Promise<void> {
    const reads: Promise<void>[] = [];
    let at = 0;
    for (let i = 0; i < extents.length; ) {
      const e = findExtent(this.state.extents, (extents[i] as CompressedExtent).unitOffset);
      if (!e?.sparse) throw new CorruptImageError(`No compressed VMDK extent holds guest offset ${(extents[i] as CompressedExtent).unitOffset}`, { file: this.#filename });
      const group: CompressedExtent[] = [];
      let length = 0;
      for (; i < extents.length && findExtent(this.state.extents, (extents[i] as CompressedExtent).unitOffset) === e; i++) {
        group.push(extents[i] as CompressedExtent);
        length += (extents[i] as CompressedExtent).length;
      }
      reads.push(e.sparse.readCompressedRun(group, e.start, into.subarray(at, at + length)));
      at += length;
    }
    await settleAll(reads);
  }

  async describe(): Promise<FormatDescription> {
    const s = this.state;
    return {
      clusterSize: this.#clusterSize(),
      dirty: false,
      formatSpecific: {
        type: 'vmdk',
        data: {
          'create-type': s.createType,
          'cid': s.cid,
          'parent-cid': s.parentCid,
          'extents': s.extents.map(extentInfo),
        },
      },
    };
  }

  /** QEMU's vmdk_co_get_info: a cluster size only when every extent is of the first one's kind. */
  #clusterSize(): number | undefined {
    const [first, ...rest] = this.state.extents;
    if (!first) return undefined;
    const same = rest.every(
      (e) => !e.sparse === !first.sparse && (e.sparse?.geom.compressed ?? false) === (first.sparse?.geom.compressed ?? false) && (!e.sparse || e.sparse.geom.grainBytes === first.sparse?.geom.grainBytes),
    );
    return same && first.sparse ? first.sparse.geom.grainBytes : undefined;
  }

  /** Every store the image owns, main one first, each once. */
  #stores(): ByteStore[] {
    return [...new Set([this.store, ...this.state.stores])];
  }

  async flush(): Promise<void> {
    if (this.writer) for (const e of this.state.extents) if (e.compressedWriter) await e.compressedWriter.flush();
    for (const s of this.#stores()) if (!s.readOnly) await s.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.writer) await this.flush();
    } finally {
      await settleAll(this.#stores().map((s) => s.close()));
    }
  }
}

function extentInfo(e: ExtentHandle): Record<string, unknown> {
  const info: Record<string, unknown> = { 'filename': e.filename, 'format': e.type, 'virtual-size': e.length };
  if (!isFlat(e) && e.sparse) info['cluster-size'] = e.sparse.geom.grainBytes;
  if (e.sparse?.geom.compressed) info['compressed'] = true;
  return info;
}
