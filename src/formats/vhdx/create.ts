/**
 * Creating a VHDX image with qemu's layout and options (block/vhdx.c
 * vhdx_co_create): file identifier, two headers, two region tables, an
 * empty 1 MiB-multiple log at 1 MiB, the BAT, 1 MiB of metadata, and data
 * from 5 MiB past the metadata (fixed images preallocate it).
 */
import { InvalidArgumentError, IoError } from '../../core/errors.js';
import { asStep } from '../../core/strerror.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { Bat, batGeometry, payloadIndex, type BatGeometry } from './bat.js';
import {
  BLOCK_SIZE_MAX,
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SECTION_END,
  MAX_IMAGE_SIZE,
  METADATA_TABLE_SIZE,
  MiB,
  PayloadState,
  REGION_TABLE1_OFFSET,
  REGION_TABLE2_OFFSET,
  randomGuid,
} from './constants.js';
import { serializeFileIdentifier, serializeHeader } from './header.js';
import { serializeMetadata } from './metadata.js';
import { serializeRegionTable } from './region.js';

const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** qemu's vhdx create options, in its list order. */
export const VHDX_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size; max of 64TB.' },
  { name: 'log_size', type: 'size', default: '1048576', help: 'Log size; min 1MB.' },
  { name: 'block_size', type: 'size', default: '0', help: 'Block Size; min 1MB, max 256MB. 0 means auto-calculate based on image size.' },
  { name: 'subformat', type: 'string', help: "VHDX format type, can be either 'dynamic' or 'fixed'. Default is 'dynamic'." },
  {
    name: 'block_state_zero',
    type: 'bool',
    help: "Force use of payload blocks of type 'ZERO'. Non-standard, but default.  Do not set to 'off' when using 'qemu-img convert' with subformat=dynamic.",
  },
];

/** Everything {@link buildVhdx} lays out. */
export interface VhdxLayoutParams {
  readonly size: number;
  readonly logSize: number;
  readonly blockSize: number;
  readonly fixed: boolean;
  readonly useZeroBlocks: boolean;
  /** 512 (what qemu writes) or 4096. */
  readonly logicalSectorSize?: number | undefined;
  /** An encoded parent locator: makes a differencing image (HasParent). */
  readonly parentLocator?: Uint8Array | undefined;
  readonly creator?: string | undefined;
}

/** Where the structures of a new image went. */
export interface VhdxLayout {
  readonly batOffset: number;
  readonly batLength: number;
  readonly metadataOffset: number;
  readonly dataOffset: number;
}

const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** qemu's automatic block size for a virtual size. */
function autoBlockSize(size: number): number {
  if (size > 32 * TiB) return 64 * MiB;
  if (size > 100 * GiB) return 32 * MiB;
  if (size > GiB) return 16 * MiB;
  return 8 * MiB;
}

/** Validates `-o` values exactly as qemu-img does (same rounding, same messages, same order). */
export function resolveCreateOptions(request: Pick<CreateRequest, 'size' | 'options'>): VhdxLayoutParams {
  const o = request.options;
  const subformat = (o.get('subformat') as string | undefined) ?? 'dynamic';
  if (subformat !== 'dynamic' && subformat !== 'fixed') throw new InvalidArgumentError(`Parameter 'subformat' does not accept value '${subformat}'`);
  const size = roundUp(request.size, 512);
  if (size > MAX_IMAGE_SIZE) throw new InvalidArgumentError('Image size too large; max of 64TB');
  const logOpt = o.get('log_size') as number | undefined;
  const logSize = logOpt === undefined ? MiB : roundUp(logOpt, MiB);
  if (logSize > 0xffffffff) throw new InvalidArgumentError('Log size must be smaller than 4 GB');
  if (logSize < MiB) throw new InvalidArgumentError('Log size must be a multiple of 1 MB');
  let blockSize = roundUp((o.get('block_size') as number | undefined) ?? 0, MiB);
  if (blockSize > BLOCK_SIZE_MAX) blockSize = BLOCK_SIZE_MAX;
  if (blockSize === 0) blockSize = autoBlockSize(size);
  if ((blockSize & (blockSize - 1)) !== 0) throw new InvalidArgumentError('Block size must be a power of two');
  const zero = o.get('block_state_zero') as boolean | undefined;
  return { size, logSize, blockSize, fixed: subformat === 'fixed', useZeroBlocks: zero ?? true };
}

/** The state and file offset of payload block `block` of a new image. */
export type BlockEntry = (block: number) => readonly [state: number, fileOffset: number];

/** The state of every payload block of a new image, as create sets them. */
function createdEntry(p: VhdxLayoutParams, layout: VhdxLayout): BlockEntry | undefined {
  const state = p.useZeroBlocks ? PayloadState.Zero : p.fixed ? PayloadState.FullyPresent : PayloadState.NotPresent;
  if (state === PayloadState.NotPresent) return undefined; // a new file reads as zeros
  return (block) => [state, state === PayloadState.FullyPresent ? roundUp(layout.dataOffset + block * p.blockSize, MiB) : 0];
}

/**
 * The BAT's bytes in 1 MiB pieces (it can be far larger than vdisk keeps in
 * memory), `at` relative to the table; sector-bitmap entries stay zero.
 */
export function* batChunks(g: BatGeometry, entry: BlockEntry): Generator<{ at: number; bytes: Uint8Array }> {
  const perChunk = MiB / 8;
  for (let base = 0; base < g.totalEntries; base += perChunk) {
    const count = Math.min(perChunk, g.totalEntries - base);
    const chunk = new Bat(new Uint8Array(count * 8), 0);
    for (let block = Math.floor(base / (g.chunkRatio + 1)) * g.chunkRatio; block < g.dataBlocks; block++) {
      const i = payloadIndex(g, block);
      if (i < base) continue;
      if (i >= base + count) break;
      const [state, offset] = entry(block);
      chunk.set(i - base, state, offset);
    }
    yield { at: base * 8, bytes: chunk.bytes };
  }
}

/** Everything a new image holds before its payload, encoded (create and the stream share it). */
export interface VhdxPieces {
  readonly geometry: BatGeometry;
  readonly layout: VhdxLayout;
  /** The file identifier, at 0. */
  readonly identifier: Uint8Array;
  /** The two headers, at 64 KiB and 128 KiB. */
  readonly headers: readonly [Uint8Array, Uint8Array];
  /** The region table, at 192 KiB and again at 256 KiB. */
  readonly regions: Uint8Array;
  /** The metadata table and its items, at the metadata region and 64 KiB into it. */
  readonly metadata: { readonly table: Uint8Array; readonly items: Uint8Array };
}

/** Lays out a new image: where its structures go and their bytes (fresh GUIDs each call). */
export function vhdxPieces(p: VhdxLayoutParams): VhdxPieces {
  const lss = p.logicalSectorSize ?? 512;
  const g = batGeometry(p.size, p.blockSize, lss, p.parentLocator !== undefined);
  const batOffset = roundUp(HEADER_SECTION_END + p.logSize, MiB);
  // qemu sizes the BAT of an empty image with an unsigned underflow ((0 - 1) >> chunk bits) and
  // refuses to open one whose BAT region is smaller; make the same region so qemu-img accepts it.
  const regionEntries = g.dataBlocks === 0 && !p.parentLocator ? Math.floor(0xffffffff / g.chunkRatio) : g.totalEntries;
  const batLength = roundUp(regionEntries * 8, MiB);
  const metadataOffset = batOffset + batLength;
  const layout: VhdxLayout = { batOffset, batLength, metadataOffset, dataOffset: metadataOffset + MiB + 4 * MiB };
  const seq = BigInt(Math.floor(Math.random() * 0x100000000));
  const header = {
    sequenceNumber: seq,
    fileWriteGuid: randomGuid(),
    dataWriteGuid: randomGuid(),
    logGuid: new Uint8Array(16),
    logVersion: 0,
    version: 1,
    logLength: p.logSize,
    logOffset: HEADER_SECTION_END,
  };
  return {
    geometry: g,
    layout,
    identifier: serializeFileIdentifier(p.creator ?? 'vdisk'),
    headers: [serializeHeader(header), serializeHeader({ ...header, sequenceNumber: seq + 1n })],
    regions: serializeRegionTable({ bat: { offset: batOffset, length: batLength }, metadata: { offset: metadataOffset, length: MiB } }),
    metadata: serializeMetadata({ blockSize: p.blockSize, fixed: p.fixed, virtualDiskSize: p.size, sectorSize: lss, page83: randomGuid(), parentLocator: p.parentLocator }),
  };
}

/** qemu's largest request (BDRV_REQUEST_MAX_BYTES): a BAT region longer than this is one qemu can neither write nor read. */
const MAX_REQUEST = 2147483136;

/**
 * Refuses a layout whose BAT region qemu cannot handle, as qemu-img fails
 * on it: an empty image with 256 MiB blocks gets a 2 GiB BAT region from
 * qemu's underflow (see vhdxPieces), which vhdx_create_bat cannot write in
 * one request and vhdx_open cannot read, so vdisk would otherwise make an
 * image qemu-img cannot open.
 *
 * @throws {IoError} EIO in qemu's words
 */
export function checkBatRequest(layout: VhdxLayout): void {
  if (layout.batLength > MAX_REQUEST) throw new IoError('Failed to write the BAT: Input/output error', { errno: 5 });
}

/** Lays out a new image on an empty store. */
export async function buildVhdx(store: ByteStore, p: VhdxLayoutParams): Promise<VhdxLayout> {
  const pieces = vhdxPieces(p);
  const { layout } = pieces;
  // A system error (a full disk, a file size limit) in vhdx_co_create's words for its first steps.
  await asStep('Failed to write file signature', store.write(0, pieces.identifier));
  await asStep('Failed to write image headers', store.write(HEADER1_OFFSET, pieces.headers[0]).then(() => store.write(HEADER2_OFFSET, pieces.headers[1])));
  await store.truncate(p.fixed ? layout.dataOffset + p.size : layout.dataOffset);
  checkBatRequest(layout);
  const entry = createdEntry(p, layout);
  if (entry) for (const { at, bytes } of batChunks(pieces.geometry, entry)) await store.write(layout.batOffset + at, bytes);
  await store.write(REGION_TABLE1_OFFSET, pieces.regions);
  await store.write(REGION_TABLE2_OFFSET, pieces.regions);
  await store.write(layout.metadataOffset, pieces.metadata.table);
  await store.write(layout.metadataOffset + METADATA_TABLE_SIZE, pieces.metadata.items);
  return layout;
}

/** The driver's create hook. */
export async function createVhdx(store: ByteStore, request: CreateRequest): Promise<void> {
  await buildVhdx(store, resolveCreateOptions(request));
}
