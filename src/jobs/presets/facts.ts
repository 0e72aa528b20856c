/**
 * The facts the preset rules judge, gathered through the inspect and info
 * jobs (external references never followed): the file, inflated when
 * gzip'd, read as a tar archive when it is one, and the disk image — the
 * file itself or the archive's disk entry, seen through a window.
 */
import { unwrapSettings, type IngestPolicy } from '../../block/ingest-policy.js';
import { openUpload, type OpenedUpload } from '../../block/archive-open.js';
import { info, type ImageInfo } from '../info.js';
import { inspect } from '../inspect.js';
import type { DiskFacts, ImageFacts } from './types.js';

/** Options of fact gathering. */
export interface FactOptions {
  /** Inflation limits and temporary directory (the trust is always `none`). */
  readonly policy?: IngestPolicy | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The disk's bytes (a store: jobs name no io/ type). */
type DiskStore = NonNullable<OpenedUpload['disk']>;

const REFERENCE_CODES = new Set(['backing-file', 'data-file', 'external-extent', 'protocol-reference']);

/** `info` of the disk as `format`, or undefined when it does not open so. */
async function infoAs(store: DiskStore, format: string | undefined): Promise<ImageInfo | undefined> {
  try {
    return (await info(store, { format, trust: 'none', unwrap: false }))[0];
  } catch {
    return undefined;
  }
}

function subformatOf(i: ImageInfo | undefined): string | undefined {
  if (i?.format === 'vpc') return i.clusterSize === undefined ? 'fixed' : 'dynamic';
  const data = i?.formatSpecific?.data as { createType?: string } | undefined;
  return i?.format === 'vmdk' ? data?.createType : undefined;
}

/** What the disk is, as inspect and info see it. */
async function diskFacts(store: DiskStore, name: string): Promise<DiskFacts> {
  const ins = await inspect(store, { unwrap: false });
  let i = ins.format === undefined ? undefined : await infoAs(store, ins.format);
  // A fixed VHD probes as raw: its only footer is at the end of the file.
  const vhd = ins.format === 'raw' ? await infoAs(store, 'vpc') : undefined;
  if (vhd) i = vhd;
  return {
    filename: name,
    format: i?.format ?? ins.format,
    subformat: subformatOf(i),
    virtualSize: i?.virtualSize ?? ins.virtualSize,
    references: ins.references,
    problems: ins.reasons.filter((r) => !REFERENCE_CODES.has(r.code)),
    formatSpecific: i?.formatSpecific?.data as Record<string, unknown> | undefined,
  };
}

/** Gathers the facts of `image` (a path or a store the caller keeps). */
export async function gatherFacts(image: Parameters<typeof openUpload>[0], options: FactOptions = {}): Promise<ImageFacts> {
  const upload = await openUpload(image, unwrapSettings({ policy: options.policy }), options.signal);
  try {
    const disk = upload.disk ? await diskFacts(upload.disk, upload.diskName) : undefined;
    return { filename: upload.filename, compression: upload.compression, archive: upload.archive, disk };
  } finally {
    await upload.close();
  }
}
