/**
 * Opening a VMDK: a sparse file with an embedded descriptor
 * (monolithicSparse, streamOptimized) or a text descriptor listing extent
 * files (monolithicFlat, twoGbMaxExtent*, VMware's mixed descriptors).
 * Extent files are opened only through `options.external`, which applies
 * the trust mode: their names are hostile input (CVE-2022-47951).
 */
import { isAbsolute } from 'node:path';

import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore, OpenOptions } from '../driver.js';
import { checkDescriptorType, descriptorText, type Descriptor, type ExtentLine, parseDescriptor, requireCid } from './descriptor.js';
import type { ExtentHandle } from './extent.js';
import { parseFooter, parseVmdk4Header, sparseMagic, type Vmdk4Header, vmdk3Geometry, vmdk4Geometry } from './header.js';
import { SECTOR, VMDK3_MAGIC, VMDK4_MAGIC } from './layout.js';
import { SparseExtent } from './sparse.js';

/** Bytes QEMU reads for an embedded descriptor when the header gives no size (DESC_SIZE). */
const DEFAULT_DESC_BYTES = 20 * SECTOR;

/** Where the descriptor text lives, for CID updates. */
export interface DescriptorPlace {
  readonly store: ByteStore;
  readonly offset: number;
  /** Bytes available (the whole file for a descriptor file). */
  readonly capacity: number;
  readonly embedded: boolean;
}

/** Everything an open image needs. */
export interface OpenedVmdk {
  readonly createType: string;
  /** Changes when a write gives the image a new CID. */
  cid: number;
  readonly parentCid: number;
  readonly parentFileNameHint: string | undefined;
  readonly extents: ExtentHandle[];
  readonly descriptor: DescriptorPlace;
  /** Stores the image owns besides the main one. */
  readonly stores: ByteStore[];
  /** Header of a GD_AT_END (stream) extent, for appending. */
  readonly streamHeader: Vmdk4Header | undefined;
}

/** QEMU's path_combine, for the names info shows. */
export function combine(base: string, name: string): string {
  if (isAbsolute(name)) return name;
  const slash = base.lastIndexOf('/');
  return slash < 0 ? name : base.slice(0, slash + 1) + name;
}

async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const b = new Uint8Array(length);
  await store.read(offset, b);
  return b;
}

/** A KDMV/COWD file as one sparse extent; `header` is the effective one (footer when GD_AT_END). */
async function openSparseFile(store: ByteStore, readOnly: boolean): Promise<{ sparse: SparseExtent; header: Vmdk4Header | undefined; atEnd: boolean }> {
  const size = await store.size();
  const head = await readAt(store, 0, SECTOR);
  if (sparseMagic(head) === VMDK3_MAGIC) {
    return { sparse: await SparseExtent.open(store, vmdk3Geometry(head, store.name)), header: undefined, atEnd: false };
  }
  let header = parseVmdk4Header(head, store.name);
  const atEnd = header.gdOffset < 0;
  if (atEnd) {
    if (size < 4 * SECTOR) throw new CorruptImageError('Invalid footer', { file: store.name });
    const base = Math.floor(size / SECTOR) * SECTOR - 3 * SECTOR;
    header = parseFooter(await readAt(store, base, 3 * SECTOR), store.name, base);
  }
  const geom = vmdk4Geometry(header, size, readOnly, store.name);
  return { sparse: await SparseExtent.open(store, geom), header, atEnd };
}

async function readEmbeddedDescriptor(store: ByteStore, header: Vmdk4Header | undefined): Promise<DescriptorPlace & { text: string }> {
  const offset = header?.descOffset ? header.descOffset * SECTOR : SECTOR;
  const capacity = Math.min(header?.descSize ? header.descSize * SECTOR : DEFAULT_DESC_BYTES, LIMITS.vmdkMaxDescriptorBytes);
  const text = descriptorText(await readAt(store, offset, capacity));
  return { store, offset, capacity, embedded: true, text };
}

async function openMonolithic(store: ByteStore, options: OpenOptions): Promise<OpenedVmdk> {
  const { sparse, header, atEnd } = await openSparseFile(store, options.readOnly);
  if (header && header.capacity === 0 && header.descOffset !== 0) {
    const place = await readEmbeddedDescriptor(store, header);
    return openDescriptorText(place.text, place, options);
  }
  const place = await readEmbeddedDescriptor(store, header);
  const desc = parseDescriptor(place.text, store.name);
  const extent: ExtentHandle = {
    type: '',
    start: 0,
    length: sparse.capacity,
    filename: options.filename,
    store,
    flatOffset: 0,
    sparse,
    readOnly: header === undefined,
  };
  return {
    createType: sparse.geom.compressed ? 'streamOptimized' : header === undefined ? 'vmfsSparse' : 'monolithicSparse',
    cid: requireCid(desc, store.name),
    parentCid: desc.parentCid,
    parentFileNameHint: desc.parentFileNameHint,
    extents: [extent],
    descriptor: place,
    stores: [],
    streamHeader: atEnd ? header : undefined,
  };
}

/** Opens each extent line's file through the resolver (one store per distinct name). */
async function openExtents(desc: Descriptor, options: OpenOptions, stores: ByteStore[]): Promise<ExtentHandle[]> {
  const byName = new Map<string, ByteStore>();
  const extents: ExtentHandle[] = [];
  let start = 0;
  for (const line of desc.extents) {
    const handle = await openExtent(line, start, options, byName, stores);
    if (handle.length > LIMITS.maxOffset - start) throw new UnsupportedError('VMDK extents add up to more than vdisk supports', { file: options.filename });
    extents.push(handle);
    start += handle.length;
  }
  return extents;
}

async function openExtent(line: ExtentLine, start: number, options: OpenOptions, byName: Map<string, ByteStore>, stores: ByteStore[]): Promise<ExtentHandle> {
  const base = { type: line.kind, start, filename: combine(options.filename, line.filename), flatOffset: 0, sparse: undefined, readOnly: line.access === 'RDONLY' };
  if (line.kind === 'ZERO') return { ...base, filename: options.filename, length: line.sectors * SECTOR, store: undefined };
  let store = byName.get(line.filename);
  if (!store) {
    store = await options.external.open(line.filename, 'extent', {
      readOnly: options.readOnly || line.access === 'RDONLY',
      metadata: line.kind !== 'FLAT' && line.kind !== 'VMFS',
    });
    byName.set(line.filename, store);
    stores.push(store);
  }
  if (line.kind === 'FLAT' || line.kind === 'VMFS') {
    return { ...base, length: line.sectors * SECTOR, store, flatOffset: line.offset * SECTOR };
  }
  // as vmdk_read_desc then vmdk_open_sparse: an empty file, then one without a sparse magic
  if ((await store.size()) === 0) throw new CorruptImageError('File is too small, not a valid image', { file: store.name });
  const magic = sparseMagic(await readAt(store, 0, SECTOR));
  if (magic !== VMDK4_MAGIC && magic !== VMDK3_MAGIC) throw new CorruptImageError('Image not in VMDK format', { file: store.name });
  const { sparse, header, atEnd } = await openSparseFile(store, options.readOnly);
  if (header && header.capacity === 0 && header.descOffset !== 0) {
    throw new UnsupportedError(`Extent '${line.filename}' is itself a descriptor; nested descriptors are not supported`, { file: store.name });
  }
  if (atEnd) throw new UnsupportedError(`Extent '${line.filename}' is a stream (footer) extent inside a descriptor, which vdisk does not support`, { file: store.name });
  // QEMU sizes sparse extents from their header, not from the extent line.
  return { ...base, length: sparse.capacity, store, sparse, readOnly: base.readOnly || header === undefined };
}

async function openDescriptorText(text: string, place: DescriptorPlace, options: OpenOptions): Promise<OpenedVmdk> {
  const desc = parseDescriptor(text, options.filename, true);
  const createType = checkDescriptorType(desc, options.filename);
  const cid = requireCid(desc, options.filename);
  const stores: ByteStore[] = [];
  for (const line of desc.extents) if (line.kind !== 'ZERO') options.external.declare?.(line.filename, 'extent');
  if (desc.parentFileNameHint !== undefined) options.external.declare?.(desc.parentFileNameHint, 'backing-file');
  try {
    const extents = await openExtents(desc, options, stores);
    return { createType, cid, parentCid: desc.parentCid, parentFileNameHint: desc.parentFileNameHint, extents, descriptor: place, stores, streamHeader: undefined };
  } catch (err) {
    await Promise.allSettled(stores.map((s) => s.close()));
    throw err;
  }
}

/** Opens the image on `store` (read-only unless `options.readOnly` is false). */
export async function openVmdk(store: ByteStore, options: OpenOptions): Promise<OpenedVmdk> {
  const size = await store.size();
  if (size < 4) throw new CorruptImageError('File is too small, not a valid image', { file: options.filename });
  const magic = sparseMagic(await readAt(store, 0, 4));
  if (magic === VMDK4_MAGIC || magic === VMDK3_MAGIC) return openMonolithic(store, options);
  // As vmdk_read_desc: the text is the file's first vmdkMaxDescriptorBytes, whatever follows.
  const text = descriptorText(await readAt(store, 0, Math.min(size, LIMITS.vmdkMaxDescriptorBytes)));
  return openDescriptorText(text, { store, offset: 0, capacity: LIMITS.vmdkMaxDescriptorBytes, embedded: false }, options);
}
