/**
 * A VHD read forward. Fixed disks are their guest bytes followed by the
 * footer: the bytes are passed on as they come, the last 512 held back
 * until the stream ends, and the footer then gives the virtual size.
 * Dynamic disks start with the footer copy, then the dynamic header and
 * the BAT (QEMU's and Hyper-V's layout): once the BAT is read, the blocks
 * are taken in the order they sit in the file. A header, BAT or block the
 * stream has already passed cannot be read forward ('stream-layout').
 */
import { CorruptImageError, PolicyError, UnsupportedError } from '../../core/errors.js';
import type { ForwardImage, ForwardRequest, ForwardSource, GuestWrite } from '../driver.js';
import { dataWrites, FORWARD_CHUNK, plainWrites, withPrefix } from '../forward-writes.js';
import { BAT_UNALLOCATED, parseBat } from './bat.js';
import { checkTableGeometry, parseDynamicHeader, VHD_DYNAMIC_HEADER_SIZE } from './dynamic-header.js';
import { hasFooterCookie, parseFooter, VHD_FOOTER_SIZE, VHD_TYPE, virtualSectors, type VhdFooter } from './footer.js';

/** Most BAT bytes held when the request names no spill limit. */
const DEFAULT_BAT_LIMIT = 4 * 1024 * 1024 * 1024;

function layoutError(name: string, what: string, offset: number, position: number): CorruptImageError {
  return new CorruptImageError(`'${name}': ${what} at offset ${offset} comes before offset ${position}, where the stream already is; this VHD cannot be read forward`, {
    file: name,
    offset,
    reason: 'stream-layout',
  });
}

/** Skips forward to `offset`, or fails when the stream is already past it. */
async function seekTo(source: ForwardSource, offset: number, what: string, name: string): Promise<void> {
  if (offset < source.position) throw layoutError(name, what, offset, source.position);
  await source.skip(offset - source.position);
}

function fixedImage(source: ForwardSource, name: string): ForwardImage {
  let size: number | undefined;
  return {
    size: undefined,
    async *writes(): AsyncIterable<GuestWrite> {
      let tail: Uint8Array = new Uint8Array(0);
      let data = 0;
      yield* plainWrites(source, VHD_FOOTER_SIZE, (t) => (tail = t), (n) => (data = n));
      if (tail.length < VHD_FOOTER_SIZE || !hasFooterCookie(tail)) throw new CorruptImageError('invalid VPC image', { file: name, offset: data });
      const footer = parseFooter(tail, data);
      if (footer.diskType !== VHD_TYPE.fixed) throw new CorruptImageError(`'${name}': the footer at offset ${data} is not a fixed disk's (type ${footer.diskType})`, { file: name, offset: data + 60 });
      size = virtualSectors(footer) * 512;
    },
    finalSize(): number {
      if (size === undefined) throw new Error('vpc forward image: finalSize before the writes ended');
      return size;
    },
  };
}

/** The blocks of a dynamic disk, in file order: [start byte, block index]. */
function blockOrder(bat: Uint32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < bat.length; i++) {
    const e = bat[i] as number;
    if (e !== BAT_UNALLOCATED) out.push([e * 512, i]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

async function dynamicImage(source: ForwardSource, footer: VhdFooter, request: ForwardRequest): Promise<ForwardImage> {
  const name = request.name;
  const size = virtualSectors(footer) * 512;
  const headerOffset = footer.dataOffset;
  if (headerOffset === undefined) throw new CorruptImageError('VHD dynamic disk header offset (footer field at offset 16) is not a valid offset', { file: name, offset: 16 });
  await seekTo(source, headerOffset, 'the dynamic disk header', name);
  const header = parseDynamicHeader(await source.read(VHD_DYNAMIC_HEADER_SIZE), headerOffset);
  checkTableGeometry(header, size, headerOffset);
  await seekTo(source, header.tableOffset, 'the BAT', name);
  // Entries past the virtual size are never read; only those before it are kept.
  const entries = Math.min(header.maxTableEntries, Math.ceil(size / header.blockSize));
  const limit = request.spill?.limit ?? DEFAULT_BAT_LIMIT;
  if (entries * 4 > limit) {
    throw new PolicyError(`'${name}': the BAT at offset ${header.tableOffset} (${entries * 4} bytes) is above the spill limit of ${limit} bytes`, { file: name, offset: header.tableOffset, reason: 'spill-limit' });
  }
  const bat = parseBat(new Uint8Array(await source.read(entries * 4)), entries);
  await source.skip((header.maxTableEntries - entries) * 4);
  const span = header.bitmapSize + header.blockSize;
  return {
    size,
    async *writes(): AsyncIterable<GuestWrite> {
      let end = source.position;
      for (const [start, index] of blockOrder(bat)) {
        // Blocks before the BAT's end, or overlapping the one before, are behind the stream.
        if (start < end) throw layoutError(name, `VHD BAT entry ${index}: the block`, start, end);
        await source.skip(start - source.position + header.bitmapSize);
        const guest = index * header.blockSize;
        const useful = Math.max(0, Math.min(header.blockSize, size - guest));
        for (let at = 0; at < header.blockSize; at += FORWARD_CHUNK) {
          const n = Math.min(FORWARD_CHUNK, header.blockSize - at);
          if (at >= useful) {
            await source.skip(n);
            continue;
          }
          const chunk = await source.read(n);
          yield* dataWrites(guest + at, chunk.subarray(0, Math.min(n, useful - at)));
        }
        end = start + span;
      }
      // The footer (and anything after the last block) is left unread: the image is complete.
    },
    finalSize: () => size,
  };
}

/**
 * Reads a VHD from a forward-only source.
 *
 * @throws {CorruptImageError} ECORRUPT for damaged structures, and (reason 'stream-layout') for a layout that
 *   cannot be read forward
 * @throws {UnsupportedError} EUNSUPPORTED for differencing disks (their parent cannot come through a stream)
 */
export async function readVpcForward(source: ForwardSource, request: ForwardRequest): Promise<ForwardImage> {
  const head = await source.readUpTo(VHD_FOOTER_SIZE);
  if (head.length === VHD_FOOTER_SIZE && hasFooterCookie(head)) {
    const footer = parseFooter(head, 0);
    if (footer.diskType === VHD_TYPE.dynamic) return dynamicImage(source, footer, request);
    if (footer.diskType === VHD_TYPE.differencing) throw new UnsupportedError(`'${request.name}': a differencing VHD cannot be read from a stream (its parent is another file)`, { file: request.name });
  }
  return fixedImage(withPrefix(head, source), request.name);
}
