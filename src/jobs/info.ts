/**
 * info: what `qemu-img info` reports, as typed camelCase data, for one
 * image or its whole backing chain.
 */
import { BlockDevice } from '../block/device.js';
import { chainMemberError, type ImageTarget, type OpenImageOptions } from '../block/chain.js';
import { layerFacts, type Layer } from '../block/layer.js';
import type { SnapshotInfo } from '../block/types.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { formatSpecificInfo, type FormatSpecificInfo } from './info-format-specific.js';

/** One internal snapshot (qemu's `SnapshotInfo`). */
export interface ImageSnapshotInfo {
  /** Snapshot ID (a decimal string). */
  id: string;
  /** Snapshot name (tag). */
  name: string;
  /** Size of the saved VM state, in bytes. */
  vmStateSize: number;
  /** Creation time, seconds since the epoch. */
  dateSec: number;
  /** Nanoseconds part of the creation time. */
  dateNsec: number;
  /** Guest clock at creation, whole seconds. */
  vmClockSec: number;
  /** Nanoseconds part of the guest clock. */
  vmClockNsec: number;
  /** Instruction count at creation, when recorded. */
  icount?: number | undefined;
}

/**
 * What {@link info} reports for one image: qemu's `ImageInfo` with
 * camelCase keys. `toQemuJson(info)` gives the object `qemu-img info
 * --output=json` prints.
 */
export interface ImageInfo {
  /** The image's name as it was opened. */
  filename: string;
  /** The image format. */
  format: string;
  /** True when the image was not closed cleanly (qcow2 lazy refcounts). */
  dirtyFlag?: boolean | undefined;
  /** Bytes the image file occupies on disk. */
  actualSize?: number | undefined;
  /** Guest-visible size in bytes. */
  virtualSize: number;
  /** Allocation unit (cluster, grain or block size), for formats that have one. */
  clusterSize?: number | undefined;
  /** Present (true) for encrypted images. */
  encrypted?: boolean | undefined;
  /** The backing file name as recorded in the image. */
  backingFilename?: string | undefined;
  /** The backing file name combined with the image's directory. */
  fullBackingFilename?: string | undefined;
  /** The recorded backing file format. */
  backingFilenameFormat?: string | undefined;
  /** Internal snapshots. */
  snapshots?: ImageSnapshotInfo[] | undefined;
  /** Format-specific facts (qcow2, vmdk, luks): narrow on `type`. */
  formatSpecific?: FormatSpecificInfo | undefined;
}

/** Phases of {@link info}: `describe` (one step per image described). */
export type InfoPhase = 'describe';

/** Options of {@link info}. */
export interface InfoOptions extends Omit<OpenImageOptions, 'readOnly' | 'backing' | 'describeOnly' | 'signal'>, JobOptions<InfoPhase> {
  /** Describe every image of the backing chain (`--backing-chain`). */
  backingChain?: boolean | undefined;
}

/** A driver's snapshot as {@link info} and `snapshot -l` report it (the guest clock split as qemu splits it). */
export function snapshotInfo(s: SnapshotInfo): ImageSnapshotInfo {
  return {
    id: s.id,
    name: s.name,
    vmStateSize: s.vmStateSize,
    dateSec: s.dateSec,
    dateNsec: s.dateNsec,
    vmClockSec: Math.floor(s.vmClockNsec / 1e9),
    vmClockNsec: s.vmClockNsec % 1e9,
    icount: s.icount,
  };
}

/** Describes one open layer. */
export async function describeLayer(layer: Layer): Promise<ImageInfo> {
  const { description: d, virtualSize, actualSize: actual } = await layerFacts(layer);
  const info: ImageInfo = {
    filename: layer.filename,
    format: layer.format,
    dirtyFlag: d.dirty,
    actualSize: actual,
    virtualSize,
    clusterSize: d.clusterSize,
    encrypted: d.encrypted ? true : undefined,
  };
  if (layer.backing) {
    info.backingFilename = layer.backing.filename;
    info.fullBackingFilename = layer.backingPath;
    info.backingFilenameFormat = layer.backing.format;
  }
  if (d.snapshots && d.snapshots.length > 0) info.snapshots = d.snapshots.map(snapshotInfo);
  if (d.formatSpecific) info.formatSpecific = formatSpecificInfo(d.formatSpecific);
  return info;
}

async function runInfo(filename: ImageTarget, options: InfoOptions, ctx: JobContext<InfoPhase>): Promise<ImageInfo[]> {
  const dev = await BlockDevice.open(filename, { ...options, signal: ctx.signal, readOnly: true, backing: options.backingChain ?? false, describeOnly: true }).catch((err: unknown) => {
    // qemu-img opens each image of the chain by its own name: a failed backing file is reported as such.
    throw options.backingChain ? chainMemberError(err) : err;
  });
  try {
    ctx.progress.phase('describe', dev.layers.length);
    const out: ImageInfo[] = [];
    for (const layer of dev.layers) {
      ctx.signal.throwIfAborted();
      out.push(await describeLayer(layer));
      ctx.progress.advance(1);
    }
    ctx.progress.finish();
    return out;
  } finally {
    await dev.close();
  }
}

/**
 * Describes an image as `qemu-img info` does: one {@link ImageInfo} per
 * image, top first; with `backingChain`, every image of the chain (opened
 * through the resolver, so loops, over-deep chains and unsafe references
 * fail cleanly). `toQemuJson` turns the result into qemu-img's JSON.
 *
 * @example
 * ```ts
 * const [top] = await info('disk.qcow2');
 * console.log(top?.virtualSize, top?.formatSpecific?.type);
 * console.log(JSON.stringify(toQemuJson(top!), null, 4)); // qemu-img info --output=json
 * ```
 * @throws {NotFoundError} ENOENT, {@link UnknownFormatError} EFORMAT, {@link BackingLoopError} ELOOP, ...
 */
export function info(filename: ImageTarget, options: InfoOptions = {}): Job<ImageInfo[], InfoPhase> {
  return new Job((ctx) => runInfo(filename, options, ctx), options);
}
