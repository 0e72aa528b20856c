/**
 * Opening a VHD: find and check the footer, then (dynamic and differencing
 * disks) the dynamic header, the BAT and the parent locator. Every field is
 * checked before it sizes a read or an allocation.
 */
import { alignUp } from '../../core/bytes.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import type { BackingRef, ByteStore } from '../driver.js';
import { checkBlockOverlaps, dataEnd, parseBat, type BlockLayout } from './bat.js';
import { checkTableGeometry, parseDynamicHeader, VHD_DYNAMIC_HEADER_SIZE, type DynamicHeader } from './dynamic-header.js';
import { hasFooterCookie, parseFooter, VHD_FOOTER_SIZE, VHD_TYPE, virtualSectors, type VhdFooter } from './footer.js';
import { checkLocator, chooseLocator, decodeLocator, normalizeWindowsPath } from './parent.js';

/** The block structures of a dynamic or differencing disk. */
export interface VpcDynamic {
  readonly headerOffset: number;
  readonly header: DynamicHeader;
  readonly layout: BlockLayout;
  readonly bat: Uint32Array;
  /** First free byte: where the footer is and where the next block goes. */
  freeOffset: number;
}

/** Everything an open VHD needs. */
export interface VpcState {
  readonly store: ByteStore;
  readonly kind: 'fixed' | 'dynamic' | 'differencing';
  readonly footer: VhdFooter;
  /** The footer bytes as read (rewritten at the end of the file when blocks are added). */
  readonly footerBytes: Uint8Array;
  readonly virtualSize: number;
  /** Fixed disks: where the guest data ends (the footer's offset). */
  readonly dataLimit: number;
  readonly dynamic: VpcDynamic | undefined;
  readonly backing: BackingRef | undefined;
}

async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await store.read(offset, buf);
  return buf;
}

/** Finds the footer: the copy at offset 0 (dynamic disks), else the last 512 bytes (fixed disks). */
export async function findFooter(store: ByteStore, fileSize: number): Promise<{ bytes: Uint8Array; footer: VhdFooter }> {
  // QEMU counts the file in whole sectors and reads what lies past its end as zeros
  const sectors = alignUp(fileSize, 512);
  const head = await readAt(store, 0, VHD_FOOTER_SIZE);
  if (hasFooterCookie(head) && sectors >= VHD_FOOTER_SIZE) {
    const footer = parseFooter(head, 0);
    // A fixed disk whose first sector merely looks like a footer keeps its real footer at the end.
    if (footer.diskType !== VHD_TYPE.fixed) return { bytes: head, footer };
  }
  if (sectors < VHD_FOOTER_SIZE) throw new CorruptImageError('File too small for a VHD header', { offset: 0 });
  const end = sectors - VHD_FOOTER_SIZE;
  const tail = await readAt(store, end, VHD_FOOTER_SIZE);
  if (!hasFooterCookie(tail)) throw new CorruptImageError('invalid VPC image', { offset: end });
  return { bytes: tail, footer: parseFooter(tail, end) };
}

function kindOf(f: VhdFooter): VpcState['kind'] {
  switch (f.diskType) {
    case VHD_TYPE.fixed:
      return 'fixed';
    case VHD_TYPE.dynamic:
      return 'dynamic';
    case VHD_TYPE.differencing:
      return 'differencing';
    default:
      throw new UnsupportedError(`VHD disk type ${f.diskType} is not supported (2 fixed, 3 dynamic, 4 differencing)`, { offset: 60 });
  }
}

async function openDynamic(store: ByteStore, f: VhdFooter, virtualSize: number, fileSize: number, writable: boolean): Promise<VpcDynamic> {
  const headerOffset = f.dataOffset;
  // a header past the end reads as zeros, as in QEMU: the magic check reports it
  if (headerOffset === undefined) {
    throw new CorruptImageError('VHD dynamic disk header offset (footer field at offset 16) is not a valid offset', { offset: 16 });
  }
  const header = parseDynamicHeader(await readAt(store, headerOffset, VHD_DYNAMIC_HEADER_SIZE), headerOffset);
  checkTableGeometry(header, virtualSize, headerOffset);
  const batBytes = header.maxTableEntries * 4;
  // QEMU reads a BAT past the end as zeros and then finds free_data_block_offset
  // (at least the BAT's end) past the end: say so without reading it
  if (alignUp(header.tableOffset + batBytes, 512) > alignUp(fileSize, 512)) throw truncated(header.tableOffset);
  const layout: BlockLayout = { batOffset: header.tableOffset, entries: header.maxTableEntries, blockSize: header.blockSize, bitmapSize: header.bitmapSize };
  const bat = parseBat(await readAt(store, header.tableOffset, batBytes), header.maxTableEntries);
  const freeOffset = dataEnd(bat, layout);
  if (freeOffset > alignUp(fileSize, 512)) throw truncated(header.tableOffset);
  if (writable) checkBlockOverlaps(bat, layout, headerOffset, VHD_DYNAMIC_HEADER_SIZE);
  return { headerOffset, header, layout, bat, freeOffset };
}

function truncated(batOffset: number): CorruptImageError {
  return new CorruptImageError('block-vpc: free_data_block_offset points after the end of file. The image has been truncated.', { offset: batOffset });
}

async function parentOf(store: ByteStore, header: DynamicHeader, fileSize: number): Promise<BackingRef> {
  const loc = chooseLocator(header.locators);
  let name = '';
  if (loc) {
    checkLocator(loc, fileSize);
    name = decodeLocator(loc.platform, await readAt(store, loc.dataOffset, loc.dataLength));
  }
  if (name === '') name = normalizeWindowsPath(header.parentName);
  if (name === '') throw new CorruptImageError('Differencing VHD names no parent: no usable parent locator and an empty parent name', { offset: 64 });
  return { filename: name, format: 'vpc' };
}

/**
 * Reads and checks every structure of the VHD on `store`.
 *
 * @throws {CorruptImageError} ECORRUPT for damaged structures (naming the structure and offset)
 * @throws {UnsupportedError} EUNSUPPORTED for unknown disk types and limits vdisk refuses
 */
export async function openVpc(store: ByteStore, writable: boolean, forceSizeCalc?: 'chs' | 'current_size'): Promise<VpcState> {
  const fileSize = await store.size();
  const { bytes, footer } = await findFooter(store, fileSize);
  const kind = kindOf(footer);
  const virtualSize = virtualSectors(footer, forceSizeCalc) * 512;
  if (kind === 'fixed') {
    return { store, kind, footer, footerBytes: bytes, virtualSize, dataLimit: fileSize - VHD_FOOTER_SIZE, dynamic: undefined, backing: undefined };
  }
  const dynamic = await openDynamic(store, footer, virtualSize, fileSize, writable);
  const backing = kind === 'differencing' ? await parentOf(store, dynamic.header, fileSize) : undefined;
  return { store, kind, footer, footerBytes: bytes, virtualSize, dataLimit: 0, dynamic, backing };
}

