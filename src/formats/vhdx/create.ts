/**
 * Creating a VHDX image with qemu's layout and options (block/vhdx.c
 * vhdx_co_create): file identifier, two headers, two region tables, an
 * empty 1 MiB-multiple log at 1 MiB, the BAT, 1 MiB of metadata, and data
 * from 5 MiB past the metadata (fixed images preallocate it).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { Bat, batGeometry, payloadIndex } from './bat.js';
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
function resolveCreateOptions(request: CreateRequest): VhdxLayoutParams {
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

/** Writes the BAT in 1 MiB pieces (it can be far larger than vdisk keeps in memory). */
async function writeBat(store: ByteStore, p: VhdxLayoutParams, lss: number, layout: VhdxLayout): Promise<void> {
  const g = batGeometry(p.size, p.blockSize, lss, p.parentLocator !== undefined);
  const state = p.useZeroBlocks ? PayloadState.Zero : p.fixed ? PayloadState.FullyPresent : PayloadState.NotPresent;
  if (state === PayloadState.NotPresent) return; // a new file reads as zeros
  const perChunk = MiB / 8;
  const chunk = new Bat(new Uint8Array(MiB), 0);
  for (let base = 0; base < g.totalEntries; base += perChunk) {
    chunk.bytes.fill(0);
    const count = Math.min(perChunk, g.totalEntries - base);
    for (let block = Math.floor(base / (g.chunkRatio + 1)) * g.chunkRatio; block < g.dataBlocks; block++) {
      const i = payloadIndex(g, block);
      if (i < base) continue;
      if (i >= base + count) break;
      chunk.set(i - base, state, state === PayloadState.FullyPresent ? roundUp(layout.dataOffset + block * p.blockSize, MiB) : 0);
    }
    await store.write(layout.batOffset + base * 8, chunk.bytes.subarray(0, count * 8));
  }
}

/** Lays out a new image on an empty store. */
export async function buildVhdx(store: ByteStore, p: VhdxLayoutParams): Promise<VhdxLayout> {
  const lss = p.logicalSectorSize ?? 512;
  const g = batGeometry(p.size, p.blockSize, lss, p.parentLocator !== undefined);
  const batOffset = roundUp(HEADER_SECTION_END + p.logSize, MiB);
  // qemu sizes the BAT of an empty image with an unsigned underflow ((0 - 1) >> chunk bits) and
  // refuses to open one whose BAT region is smaller; make the same region so qemu-img accepts it.
  const regionEntries = g.dataBlocks === 0 && !p.parentLocator ? Math.floor(0xffffffff / g.chunkRatio) : g.totalEntries;
  const batLength = roundUp(regionEntries * 8, MiB);
  const metadataOffset = batOffset + batLength;
  const layout: VhdxLayout = { batOffset, batLength, metadataOffset, dataOffset: metadataOffset + MiB + 4 * MiB };
  await store.write(0, serializeFileIdentifier(p.creator ?? 'vdisk'));
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
  await store.write(HEADER1_OFFSET, serializeHeader(header));
  await store.write(HEADER2_OFFSET, serializeHeader({ ...header, sequenceNumber: seq + 1n }));
  const regions = serializeRegionTable({ bat: { offset: batOffset, length: batLength }, metadata: { offset: metadataOffset, length: MiB } });
  await store.truncate(p.fixed ? layout.dataOffset + p.size : layout.dataOffset);
  await writeBat(store, p, lss, layout);
  await store.write(REGION_TABLE1_OFFSET, regions);
  await store.write(REGION_TABLE2_OFFSET, regions);
  const md = serializeMetadata({ blockSize: p.blockSize, fixed: p.fixed, virtualDiskSize: p.size, sectorSize: lss, page83: randomGuid(), parentLocator: p.parentLocator });
  await store.write(metadataOffset, md.table);
  await store.write(metadataOffset + METADATA_TABLE_SIZE, md.items);
  return layout;
}

/** The driver's create hook. */
export async function createVhdx(store: ByteStore, request: CreateRequest): Promise<void> {
  await buildVhdx(store, resolveCreateOptions(request));
}
