/**
 * info: what `qemu-img info` reports, as data in qemu's JSON shape
 * (`--output=json` key names), for one image or its whole backing chain.
 */
import { BlockDevice } from '../block/device.js';
import type { OpenImageOptions } from '../block/chain.js';
import type { Layer } from '../block/layer.js';
import type { SnapshotInfo } from '../formats/driver.js';

/** One internal snapshot, as qemu's `SnapshotInfo`. */
export interface ImageSnapshotInfo {
  'id': string;
  'name': string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  'icount'?: number | undefined;
}

/** `qemu-img info --output=json` for one image (QAPI `ImageInfo`). Keys are in schema order. */
export interface ImageInfo {
  'filename': string;
  'format': string;
  'dirty-flag'?: boolean | undefined;
  'actual-size'?: number | undefined;
  'virtual-size': number;
  'cluster-size'?: number | undefined;
  'encrypted'?: boolean | undefined;
  'backing-filename'?: string | undefined;
  'full-backing-filename'?: string | undefined;
  'backing-filename-format'?: string | undefined;
  'snapshots'?: ImageSnapshotInfo[] | undefined;
  'format-specific'?: { type: string; data: Record<string, unknown> } | undefined;
}

/** Options of {@link info}. */
export interface InfoOptions extends Omit<OpenImageOptions, 'readOnly' | 'backing'> {
  /** Describe every image of the backing chain (`--backing-chain`). */
  backingChain?: boolean | undefined;
}

function snapshotJson(s: SnapshotInfo): ImageSnapshotInfo {
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
  const actual = await layer.image.store.allocatedSize?.();
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
 * console.log(top['virtual-size']);
 * ```
 * @throws {NotFoundError} ENOENT, {@link UnknownFormatError} EFORMAT, {@link BackingLoopError} ELOOP, ...
 */
export async function info(filename: string, options: InfoOptions = {}): Promise<ImageInfo[]> {
  const dev = await BlockDevice.open(filename, { ...options, readOnly: true, backing: options.backingChain ?? false });
  try {
    const out: ImageInfo[] = [];
    for (const layer of dev.layers) out.push(await describeLayer(layer));
    return out;
  } finally {
    await dev.close();
  }
}
