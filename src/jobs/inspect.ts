/**
 * inspect: the verdict an import service wants before it converts an
 * upload. The file given is the only one read (inflated first when it is
 * wrapped); every format whose probe claims it, every file it names and
 * its sizes are reported, and it is safe only when it is one format, names
 * no other file, sets no feature bit vdisk does not know, opens cleanly
 * and is within the policy.
 */
import { isVdiskError, type ErrorCode } from '../core/errors.js';
import { openForInspection, type FormatMatch, type FoundReference, type Inspection } from '../block/inspect-open.js';
import { unwrapSettings, type IngestPolicy } from '../block/ingest-policy.js';
import { defaultRegistry, type DriverRegistry } from '../block/registry.js';
import { closeLayer, layerDescription, layerSize, type Layer } from '../block/layer.js';
import type { WrapperInfo } from '../block/unwrap.js';
import type { ByteStore, ContentSignature, UnknownFeatures } from '../block/types.js';

/** Why an upload is unsafe. */
export type InspectReasonCode =
  | 'open-failed'
  | 'unwrap-failed'
  | 'unknown-format'
  | 'unsupported-format'
  | 'format-not-allowed'
  | 'format-confusion'
  | 'backing-file'
  | 'data-file'
  | 'external-extent'
  | 'protocol-reference'
  | 'unknown-features'
  | 'virtual-size'
  | 'inflated-size';

/** One reason an upload is unsafe. */
export interface InspectReason {
  /** A stable code for programs. */
  readonly code: InspectReasonCode;
  /** What is wrong, for people. */
  readonly message: string;
}

/** The verdict on an upload (`vdisk inspect --output=json` prints it as is). */
export interface InspectResult {
  /** The name of the file inspected. */
  readonly filename: string;
  /** The format it opens as (the best probe), or undefined when nothing claims it. */
  readonly format: string | undefined;
  /** True when the upload can be converted without reading anything but itself. */
  readonly safe: boolean;
  /** Why it is not safe (empty when safe). */
  readonly reasons: readonly InspectReason[];
  /** Every format whose probe claims the file, best first (raw always claims with score 1). */
  readonly formats: readonly FormatMatch[];
  /** What a raw reader would see at its start: ISO 9660, GPT, MBR. */
  readonly signatures: readonly ContentSignature[];
  /** The files the image names, with where they would resolve. */
  readonly references: readonly FoundReference[];
  /** The wrapper (gzip, zstd, bzip2, zip) it was inflated from. */
  readonly wrapper: WrapperInfo | undefined;
  /** Feature bits set that vdisk does not know (compatible and autoclear; unknown incompatible ones fail the open). */
  readonly unknownFeatures: UnknownFeatures | undefined;
  /** Guest-visible size, when the image opened. */
  readonly virtualSize: number | undefined;
  /** Bytes of the file given. */
  readonly fileSize: number;
  /** Bytes the file given occupies on disk. */
  readonly actualSize: number | undefined;
  /** Bytes the image has once inflated (equal to fileSize when not wrapped). */
  readonly imageSize: number;
  /** Bytes of the image file holding guest data (data, compressed and preallocated zero clusters), when mapped. */
  readonly dataSize: number | undefined;
  /** The rest of the image file: headers, tables, and space nothing points to (imageSize - dataSize). */
  readonly metadataSize: number | undefined;
}

/** Options of {@link inspect}. */
export interface InspectOptions {
  /** Formats allowed, sizes, inflation and its temporary directory (the trust is always `none`: nothing else is opened). */
  policy?: IngestPolicy | undefined;
  /** Inflate a wrapped upload before judging it (default true; also `policy.unwrap`). */
  unwrap?: boolean | undefined;
  /** Drivers to probe with (default: every built-in format). */
  registry?: DriverRegistry | undefined;
  /** Stops a long inflation. */
  signal?: AbortSignal | undefined;
}

const ROLE_CODES: Readonly<Record<FoundReference['role'], InspectReasonCode>> = {
  'backing file': 'backing-file',
  'data file': 'data-file',
  extent: 'external-extent',
};

function referenceReason(r: FoundReference): InspectReason {
  const what = `${r.role === 'extent' ? 'an' : 'a'} ${r.role}`;
  if (r.protocol !== undefined) return { code: 'protocol-reference', message: `The image names ${what} through the '${r.protocol}' protocol: '${r.name}'` };
  const where = r.resolved === undefined ? '' : ` (resolves to '${r.resolved}', ${r.inside ? 'inside' : 'outside'} the upload's directory)`;
  return { code: ROLE_CODES[r.role], message: `The image names ${what} '${r.name}'${where}` };
}

/** The reason an error of the inspection open stands for. */
function errorReason(err: unknown, wrapped: boolean): InspectReason {
  const message = err instanceof Error ? err.message : String(err);
  const code: ErrorCode | undefined = isVdiskError(err) ? err.code : undefined;
  if (code === 'EPOLICY') {
    const reason = isVdiskError(err) ? err.reason : undefined;
    if (reason === 'format-not-allowed') return { code: 'format-not-allowed', message };
    if (reason === 'virtual-size-limit') return { code: 'virtual-size', message };
    return { code: 'inflated-size', message };
  }
  return { code: wrapped ? 'unwrap-failed' : 'open-failed', message };
}

/**
 * Two readings of one file: a second format driver claims it, or a raw
 * reader would see an ISO 9660 file system, a partition table or another
 * format's header where the best format sees its own.
 */
function confusion(insp: Inspection): InspectReason | undefined {
  const [best, ...others] = insp.matches;
  if (!best) return undefined;
  const rivals = others.filter((m) => m.format !== 'raw').map((m) => m.format);
  // A raw disk holding an ISO, a GPT or an MBR (or an isohybrid with all three) is one format.
  const contents = best.format === 'raw' ? [] : insp.signatures;
  const all = [...rivals, ...contents];
  if (all.length === 0) return undefined;
  return { code: 'format-confusion', message: `The file is ${best.format} but also looks like ${all.join(', ')}: different readers would see different disks` };
}

/** Everything that makes an opened upload unsafe. */
async function verdict(insp: Inspection, policy: IngestPolicy | undefined): Promise<{ reasons: InspectReason[]; unknownFeatures: UnknownFeatures | undefined }> {
  const reasons: InspectReason[] = [];
  const best = insp.matches[0];
  // Nothing was probed: the wrapper did not inflate.
  if (!best && insp.error !== undefined) return { reasons: [errorReason(insp.error, true)], unknownFeatures: undefined };
  if (!best) reasons.push({ code: 'unknown-format', message: `Could not determine the format of '${insp.filename}'` });
  else if (best.recognisedOnly) reasons.push({ code: 'unsupported-format', message: `The ${best.format} format is recognised but cannot be read by vdisk` });
  const confused = confusion(insp);
  if (confused) reasons.push(confused);
  reasons.push(...insp.references.map(referenceReason));
  if (insp.error !== undefined && !(best?.recognisedOnly ?? false)) reasons.push(errorReason(insp.error, false));
  let unknownFeatures: UnknownFeatures | undefined;
  if (insp.layer) {
    unknownFeatures = (await layerDescription(insp.layer)).unknownFeatures;
    if (unknownFeatures) {
      const bits = Object.entries(unknownFeatures).filter(([, mask]) => mask !== undefined).map(([kind, mask]) => `${kind} 0x${String(mask)}`).join(', ');
      reasons.push({ code: 'unknown-features', message: `The image sets feature bits vdisk does not know (${bits})` });
    }
    const max = policy?.maxVirtualSize;
    const size = layerSize(insp.layer);
    if (max !== undefined && size > max) reasons.push({ code: 'virtual-size', message: `Virtual size ${size} is above ${max} bytes, the most allowed` });
  }
  return { reasons, unknownFeatures };
}

/** Most extents the size accounting walks: beyond it the sizes are left out (the verdict does not need them). */
const MAX_MAPPED_EXTENTS = 1 << 20;

/** Bytes of the image's own file that hold guest data; undefined past the extent budget. */
async function dataBytes(layer: Layer): Promise<number | undefined> {
  const { image } = layer;
  let total = 0;
  let seen = 0;
  for (let offset = 0; offset < image.virtualSize; ) {
    const extents = await image.mapping(offset, image.virtualSize - offset, 65536);
    if (extents.length === 0) return undefined;
    for (const e of extents) {
      if (e.kind === 'compressed') total += e.hostLength;
      else if ((e.kind === 'data' || e.kind === 'zero') && e.store === image.store && (e.kind === 'data' || e.allocated)) total += e.length;
      offset = e.offset + e.length;
    }
    seen += extents.length;
    if (seen > MAX_MAPPED_EXTENTS) return undefined;
  }
  return total;
}

/** The data and metadata split of the image file; a mapping failure is a reason (a table points somewhere impossible). */
async function sizes(insp: Inspection, imageSize: number, reasons: InspectReason[]): Promise<{ dataSize?: number; metadataSize?: number }> {
  if (!insp.layer) return {};
  try {
    const data = await dataBytes(insp.layer);
    if (data === undefined) return {};
    // Compressed extents give upper bounds: never report a negative remainder.
    const dataSize = Math.min(data, imageSize);
    return { dataSize, metadataSize: imageSize - dataSize };
  } catch (err) {
    reasons.push(errorReason(err, false));
    return {};
  }
}

/**
 * Judges an upload without opening any file but the one given: safe means
 * one format, no backing file, data file, external extent or URL, no
 * unknown feature bits, a clean open, and sizes within the policy.
 *
 * @example
 * ```ts
 * const v = await inspect('upload.img', { policy: { allowedFormats: ['qcow2', 'raw'] } });
 * if (!v.safe) throw new Error(v.reasons.map((r) => r.message).join('; '));
 * ```
 * @throws {NotFoundError} ENOENT (and the other errors of opening the file given); all else is a reason
 */
export async function inspect(source: string | ByteStore, options: InspectOptions = {}): Promise<InspectResult> {
  const registry = options.registry ?? defaultRegistry;
  const insp = await openForInspection(source, { registry, unwrap: unwrapSettings(options), policy: options.policy, signal: options.signal });
  try {
    const { reasons, unknownFeatures } = await verdict(insp, options.policy);
    const imageSize = insp.wrapper?.inflatedSize ?? insp.fileSize;
    const { dataSize, metadataSize } = await sizes(insp, imageSize, reasons);
    return {
      filename: insp.filename,
      format: insp.matches[0]?.format,
      safe: reasons.length === 0,
      reasons,
      formats: insp.matches,
      signatures: insp.signatures,
      references: insp.references,
      wrapper: insp.wrapper,
      unknownFeatures,
      virtualSize: insp.layer ? layerSize(insp.layer) : undefined,
      fileSize: insp.fileSize,
      actualSize: insp.allocatedSize,
      imageSize,
      dataSize,
      metadataSize,
    };
  } finally {
    if (insp.layer) await closeLayer(insp.layer);
    await insp.close();
  }
}
