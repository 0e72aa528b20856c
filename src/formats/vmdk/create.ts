/**
 * Creating VMDK images with qemu-img 7.2's options and layouts
 * (vmdk_co_create_opts / vmdk_co_do_create / vmdk_init_extent), except
 * streamOptimized, which vdisk writes in VMware's append-only stream layout
 * (grain directory found through the footer).
 */
import { posix } from 'node:path';

import { encodeName } from '../../core/byte-names.js';
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore, CreateRequest, OptionSpec, OptionValue } from '../driver.js';
import { randomCid, readParentCid } from './cid.js';
import { buildDescriptor, extentLine } from './descriptor.js';
import { serializeVmdk4Header, type Vmdk4Header } from './header.js';
import {
  COMPRESSION_DEFLATE,
  DEFAULT_DESC_OFFSET,
  DEFAULT_DESC_SECTORS,
  DEFAULT_GRAIN_SECTORS,
  DEFAULT_GTES_PER_GT,
  FLAG_COMPRESS,
  FLAG_MARKER,
  FLAG_NL_DETECT,
  FLAG_RGD,
  FLAG_ZERO_GRAIN,
  SECTOR,
  SPLIT_SIZE,
  STREAM_GRAIN_OFFSET,
} from './layout.js';
import { tableBytes } from './sparse.js';
import { streamTail } from './stream.js';

/** The `-o` options, in QEMU's vmdk_create_opts order. */
export const VMDK_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'adapter_type', type: 'string', help: 'Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: "Must be 'vmdk' if present" },
  { name: 'compat6', type: 'bool', help: 'VMDK version 6 image', default: 'off' },
  { name: 'hwversion', type: 'string', help: 'VMDK hardware version', default: 'undefined' },
  { name: 'toolsversion', type: 'string', help: 'VMware guest tools version' },
  {
    name: 'subformat',
    type: 'string',
    help: 'VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} ',
  },
  { name: 'zeroed_grain', type: 'bool', help: 'Enable efficient zero writes using the zeroed-grain GTE feature' },
];

const SUBFORMATS = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'] as const;
type Subformat = (typeof SUBFORMATS)[number];
const ADAPTERS = ['ide', 'buslogic', 'lsilogic', 'legacyESX'];

/** True for subformats that write extent files beside the descriptor. */
export function vmdkCreatesExtraFiles(options: ReadonlyMap<string, OptionValue>): boolean {
  const s = options.get('subformat');
  return s === 'monolithicFlat' || s === 'twoGbMaxExtentSparse' || s === 'twoGbMaxExtentFlat';
}

export interface Settings {
  readonly size: number;
  readonly subformat: Subformat;
  readonly adapterType: string;
  readonly hwVersion: string;
  readonly toolsVersion: string;
  readonly zeroedGrain: boolean;
  readonly backingFile: string | undefined;
}

/** Validates the options in QEMU's order, with its messages. */
export function createSettings(size: number, o: ReadonlyMap<string, OptionValue>): Settings {
  const backingFmt = o.get('backing_fmt');
  if (backingFmt !== undefined && backingFmt !== 'vmdk') throw new InvalidArgumentError('backing_file must be a vmdk image');
  const adapterType = String(o.get('adapter_type') ?? 'ide');
  if (!ADAPTERS.includes(adapterType)) throw new InvalidArgumentError(`invalid parameter value: ${adapterType}`);
  const sub = String(o.get('subformat') ?? 'monolithicSparse');
  if (!(SUBFORMATS as readonly string[]).includes(sub)) throw new InvalidArgumentError(`invalid parameter value: ${sub}`);
  const subformat = sub as Subformat;
  let hw = o.get('hwversion') === undefined || o.get('hwversion') === 'undefined' ? undefined : String(o.get('hwversion'));
  if (o.get('compat6') === true) {
    if (hw !== undefined) throw new InvalidArgumentError('compat6 cannot be enabled with hwversion set');
    hw = '6';
  }
  const flat = subformat === 'monolithicFlat' || subformat === 'twoGbMaxExtentFlat';
  const backingFile = o.get('backing_file') === undefined ? undefined : String(o.get('backing_file'));
  const zeroedGrain = o.get('zeroed_grain') === true;
  if (flat && backingFile !== undefined) throw new InvalidArgumentError("Flat image can't have backing file");
  if (flat && zeroedGrain) throw new InvalidArgumentError("Flat image can't enable zeroed grain");
  if (backingFile === '') throw new InvalidArgumentError('Expected backing file name, got empty string');
  return {
    size: Math.ceil(size / SECTOR) * SECTOR,
    subformat,
    adapterType,
    hwVersion: hw ?? '4',
    toolsVersion: String(o.get('toolsversion') ?? '2147483647'),
    zeroedGrain,
    backingFile,
  };
}

/** The first sector of QEMU's sparse extents, plus its table layout. */
function sparseLayout(size: number, compress: boolean, zeroed: boolean): { header: Vmdk4Header; gtCount: number; gdSectors: number; gtSectors: number } {
  const capacity = size / SECTOR;
  const grains = Math.ceil(capacity / DEFAULT_GRAIN_SECTORS);
  const gtSectors = Math.ceil((DEFAULT_GTES_PER_GT * 4) / SECTOR);
  const gtCount = Math.ceil(grains / DEFAULT_GTES_PER_GT);
  if (gtCount > LIMITS.vmdkMaxGdEntries) throw new UnsupportedError(`VMDK extent of ${size} bytes needs more than ${LIMITS.vmdkMaxGdEntries} grain tables (vmdkMaxGdEntries)`);
  const gdSectors = Math.ceil((gtCount * 4) / SECTOR);
  const rgdOffset = DEFAULT_DESC_OFFSET + DEFAULT_DESC_SECTORS;
  const gdOffset = rgdOffset + gdSectors + gtSectors * gtCount;
  const header: Vmdk4Header = {
    version: compress ? 3 : zeroed ? 2 : 1,
    flags: FLAG_RGD | FLAG_NL_DETECT | (compress ? FLAG_COMPRESS | FLAG_MARKER : 0) | (zeroed ? FLAG_ZERO_GRAIN : 0),
    capacity,
    granularity: DEFAULT_GRAIN_SECTORS,
    descOffset: DEFAULT_DESC_OFFSET,
    descSize: DEFAULT_DESC_SECTORS,
    numGtesPerGt: DEFAULT_GTES_PER_GT,
    rgdOffset,
    gdOffset,
    grainOffset: Math.ceil((gdOffset + gdSectors + gtSectors * gtCount) / DEFAULT_GRAIN_SECTORS) * DEFAULT_GRAIN_SECTORS,
    compressAlgorithm: compress ? COMPRESSION_DEFLATE : 0,
  };
  return { header, gtCount, gdSectors, gtSectors };
}

/** QEMU's vmdk_init_extent for a sparse extent: header, both directories, empty tables. */
async function initSparse(store: ByteStore, size: number, zeroed: boolean): Promise<void> {
  const { header, gtCount, gdSectors, gtSectors } = sparseLayout(size, false, zeroed);
  await store.write(0, serializeVmdk4Header(header));
  await store.truncate(header.grainOffset * SECTOR);
  for (const dir of [header.rgdOffset, header.gdOffset]) {
    const t = new Uint32Array(gdSectors * (SECTOR / 4));
    for (let i = 0; i < gtCount; i++) t[i] = dir + gdSectors + i * gtSectors;
    await store.write(dir * SECTOR, tableBytes(t));
  }
}

/** The header of an append-only stream extent of `size` bytes (GD at end) and its grain-table count. */
export function streamHeader(size: number): { header: Vmdk4Header; gtCount: number } {
  const { header, gtCount } = sparseLayout(size, true, false);
  return { header: { ...header, flags: FLAG_NL_DETECT | FLAG_COMPRESS | FLAG_MARKER, rgdOffset: 0, gdOffset: -1, grainOffset: STREAM_GRAIN_OFFSET }, gtCount };
}

/** An empty append-only stream: header (GD at end), then the tail at the first grain offset. */
async function initStream(store: ByteStore, size: number): Promise<void> {
  const { header: h, gtCount } = streamHeader(size);
  await store.write(0, serializeVmdk4Header(h));
  const at = STREAM_GRAIN_OFFSET * SECTOR;
  await store.write(at, streamTail(new Uint32Array(gtCount), h, at));
}

/** Splits `name` as QEMU's filename_decompose: directory, stem, extension (with its dot). */
function decompose(name: string): { prefix: string; postfix: string } {
  const base = posix.basename(name.replaceAll('\\', '/'));
  const dot = base.lastIndexOf('.');
  return dot < 0 ? { prefix: base, postfix: '' } : { prefix: base.slice(0, dot), postfix: base.slice(dot) };
}

/** Creates the extent files of split and flat subformats; returns their descriptor lines. */
async function createExtentFiles(request: CreateRequest, s: Settings): Promise<string[]> {
  const flat = s.subformat === 'monolithicFlat' || s.subformat === 'twoGbMaxExtentFlat';
  const split = s.subformat.startsWith('twoGb');
  const { prefix, postfix } = decompose(request.filename);
  const lines: string[] = [];
  let created = 0;
  for (let idx = 1; created < s.size; idx++) {
    const cur = Math.min(s.size - created, split ? SPLIT_SIZE : s.size);
    const name = split ? `${prefix}-${flat ? 'f' : 's'}${String(idx).padStart(3, '0')}${postfix}` : `${prefix}-flat${postfix}`;
    const store = await request.external.open(name, 'extent', { readOnly: false, create: true, metadata: !flat });
    try {
      await store.truncate(0);
      if (flat) await store.truncate(cur);
      else await initSparse(store, cur, s.zeroedGrain);
      await store.flush();
    } finally {
      await store.close();
    }
    lines.push(extentLine(flat, cur, name));
    created += cur;
  }
  return lines;
}

/** The descriptor text of a new image with these settings, as QEMU writes it. */
function descriptorText(s: Settings, extentLines: string[], parentCid: number): Uint8Array {
  return encodeName(
    buildDescriptor({
      cid: randomCid(),
      parentCid,
      createType: s.subformat,
      parentFileNameHint: s.backingFile,
      extentLines,
      hwVersion: s.hwVersion,
      size: s.size,
      adapterType: s.adapterType,
      toolsVersion: s.toolsVersion,
    }),
  );
}

/**
 * The descriptor embedded in a monolithic image (sparse or stream) named
 * `filename`, checked to fit its area.
 *
 * @throws {InvalidArgumentError} when it does not fit the 10240 bytes QEMU reserves
 */
export function embeddedDescriptor(s: Settings, filename: string, parentCid = 0xffffffff): Uint8Array {
  const { prefix, postfix } = decompose(filename);
  const text = descriptorText(s, [extentLine(false, s.size, prefix + postfix)], parentCid);
  if (text.length > DEFAULT_DESC_SECTORS * SECTOR) throw new InvalidArgumentError('VMDK descriptor does not fit its 10240-byte area');
  return text;
}

/** Writes a new VMDK image (and, for split/flat subformats, its extent files). */
export async function createVmdk(store: ByteStore, request: CreateRequest): Promise<void> {
  const s = createSettings(request.size, request.options);
  let parentCid = 0xffffffff;
  if (s.backingFile !== undefined) {
    const cid = await readParentCid(request.external, s.backingFile);
    if (cid === undefined) throw new InvalidArgumentError('Failed to read parent CID');
    parentCid = cid;
  }
  const monolithic = s.subformat === 'monolithicSparse' || s.subformat === 'streamOptimized';
  if (!monolithic) {
    const text = descriptorText(s, await createExtentFiles(request, s), parentCid);
    await store.write(0, text);
    await store.truncate(text.length);
    return;
  }
  const text = embeddedDescriptor(s, request.filename, parentCid);
  if (s.subformat === 'streamOptimized') await initStream(store, s.size);
  else await initSparse(store, s.size, s.zeroedGrain);
  await store.write(DEFAULT_DESC_OFFSET * SECTOR, text);
}
