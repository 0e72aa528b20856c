/**
 * info: what `qemu-img info` reports, as data in qemu's JSON shape
 * (`--output=json` key names), for one image or its whole backing chain.
 */
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import type { Layer } from '../block/layer.js';
import type { SnapshotInfo } from '../block/types.js';

/** One internal snapshot, as qemu's `SnapshotInfo`. */
export interface ImageSnapshotInfo {
  /** Snapshot ID (a decimal string). */
  'id': string;
  /** Snapshot name (tag). */
  'name': string;
  /** Size of the saved VM state, in bytes. */
  'vm-state-size': number;
  /** Creation time, seconds since the epoch. */
  'date-sec': number;
  /** Nanoseconds part of the creation time. */
  'date-nsec': number;
  /** Guest clock at creation, whole seconds. */
  'vm-clock-sec': number;
  /** Nanoseconds part of the guest clock. */
  'vm-clock-nsec': number;
  /** Instruction count at creation, when recorded. */
  'icount'?: number | undefined;
}

/** `qemu-img info --output=json` for one image (QAPI `ImageInfo`). Keys are in schema order. */
export interface ImageInfo {
  /** The image's name as it was opened. */
  'filename': string;
  /** The image format. */
  'format': string;
  /** True when the image was not closed cleanly (qcow2 lazy refcounts). */
  'dirty-flag'?: boolean | undefined;
  /** Bytes the image file occupies on disk. */
  'actual-size'?: number | undefined;
  /** Guest-visible size in bytes. */
  'virtual-size': number;
  /** Allocation unit (cluster, grain or block size), for formats that have one. */
  'cluster-size'?: number | undefined;
  /** Present (true) for encrypted images. */
  'encrypted'?: boolean | undefined;
  /** The backing file name as recorded in the image. */
  'backing-filename'?: string | undefined;
  /** The backing file name combined with the image's directory. */
  'full-backing-filename'?: string | undefined;
  /** The recorded backing file format. */
  'backing-filename-format'?: string | undefined;
  /** Internal snapshots. */
  'snapshots'?: ImageSnapshotInfo[] | undefined;
  /** Format-specific facts: `type` is the format, `data` its fields (qemu's `ImageInfoSpecific`). */
  'format-specific'?: {
    /** The format name. */
    type: string;
    /** Its fields. */
    data: Record<string, unknown>;
  } | undefined;
}

/** Options of {@link info}. */
export interface InfoOptions extends Omit<OpenImageOptions, 'readOnly' | 'backing' | 'describeOnly'> {
  /** Describe every image of the backing chain (`--backing-chain`). */
  backingChain?: boolean | undefined;
}

/** A driver's snapshot as qemu's `SnapshotInfo` (the `info` JSON and the `snapshot -l` table). */
export function snapshotJson(s: SnapshotInfo): ImageSnapshotInfo {
  return {
    'id': s.id,
    'name': s.name,
    'vm-state-size': s.vmStateSize,
    'date-sec': s.dateSec,
    'date-nsec': s.dateNsec,
    'vm-clock-sec': Math.floor(s.vmClockNsec / 1e9),
    'vm-clock-nsec': s.vmClockNsec % 1e9,
    'icount': s.icount,
  };
}

/** Describes one open layer. */
export async function describeLayer(layer: Layer): Promise<ImageInfo> {
  const d = await layer.image.describe();
  // A wrapped upload's disk size is the upload's, not its private inflated copy's.
  const actual = layer.wrapper ? layer.wrapper.allocatedSize : layer.image.allocatedSize ? await layer.image.allocatedSize() : await layer.image.store.allocatedSize?.();
  const info: ImageInfo = {
    'filename': layer.filename,
    'format': layer.format,
    'dirty-flag': d.dirty,
    'actual-size': actual,
    'virtual-size': layer.image.virtualSize,
    'cluster-size': d.clusterSize,
    'encrypted': d.encrypted ? true : undefined,
  };
  if (layer.backing) {
    info['backing-filename'] = layer.backing.filename;
    info['full-backing-filename'] = layer.backingPath;
    info['backing-filename-format'] = layer.backing.format;
  }
  if (d.snapshots && d.snapshots.length > 0) info['snapshots'] = d.snapshots.map(snapshotJson);
  if (d.formatSpecific) info['format-specific'] = { type: d.formatSpecific.type, data: { ...d.formatSpecific.data } };
  return info;
}

/**
 * Describes an image as `qemu-img info` does. With `backingChain`, every
 * image of the chain, top first (the chain is opened through the resolver,
 * so loops, over-deep chains and unsafe references fail cleanly).
 *
 * @example
 * ```ts
 * const [top] = await info('disk.qcow2');
 * console.log(top?.['virtual-size']);
 * ```
 * @throws {NotFoundError} ENOENT, {@link UnknownFormatError} EFORMAT, {@link BackingLoopError} ELOOP, ...
 */
export async function info(filename: ImageTarget, options: InfoOptions = {}): Promise<ImageInfo[]> {
  const dev = await BlockDevice.open(filename, { ...options, readOnly: true, backing: options.backingChain ?? false, describeOnly: true });
  try {
    const out: ImageInfo[] = [];
    for (const layer of dev.layers) out.push(await describeLayer(layer));
    return out;
  } finally {
    await dev.close();
  }
}
