/**
 * The UDIF trailer ("koly", 512 bytes, big-endian) at the end of a dmg, as
 * QEMU's dmg_open finds and checks it. Fields vdisk reads:
 *
 * ```
 *  0x000 'koly'                 0x0d8 XML plist offset u64
 *  0x018 data fork offset u64   0x0e0 XML plist length u64
 *  0x028 resource fork offset   0x1ec sector count u64 (signed in QEMU)
 *  0x030 resource fork length
 * ```
 */
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../driver.js';
import { readHost } from '../read-only/common.js';

const SECTOR = 512;
/** The magic can sit in the last 511 bytes of the second-last sector or the first 4 of the last. */
const SEARCH_BYTES = 515;

/** The trailer fields QEMU uses, checked. */
export interface KolyTrailer {
  /** Where the trailer starts. */
  readonly offset: number;
  /** Base of every chunk offset. */
  readonly dataForkOffset: bigint;
  readonly rsrcForkOffset: number;
  readonly rsrcForkLength: number;
  readonly xmlOffset: number;
  readonly xmlLength: number;
  /** Virtual size in sectors. */
  readonly sectorCount: number;
}

/** qemu's bare -EINVAL from its driver: qemu-img words it "Could not open 'x': Invalid argument". */
export function dmgInvalid(filename: string, offset?: number): InvalidArgumentError {
  return new InvalidArgumentError(`Could not open '${filename}': Invalid argument`, { file: filename, offset });
}

/** Searches the end of the file for the trailer's magic, as qemu does over its sector-rounded length. */
async function findKoly(store: ByteStore): Promise<number> {
  // bdrv_getlength rounds the file up to whole sectors; the bytes past EOF read as zeros
  const length = Math.ceil((await store.size()) / SECTOR) * SECTOR;
  if (length < SECTOR) throw new InvalidArgumentError('dmg file must be at least 512 bytes long');
  const start = length > 511 + 512 ? length - 511 - 512 : 0;
  const buf = await readHost(store, start, Math.min(length, SEARCH_BYTES));
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 0x6b && buf[i + 1] === 0x6f && buf[i + 2] === 0x6c && buf[i + 3] === 0x79) return start + i;
  }
  throw new InvalidArgumentError('Could not locate UDIF trailer in dmg file');
}

/** A region `[offset, offset+length)` must lie before the trailer. */
function checkRegion(filename: string, offset: bigint, length: bigint, koly: number): void {
  const k = BigInt(koly);
  if (offset >= k || length > k - offset) throw dmgInvalid(filename, koly);
}

/**
 * Finds and checks the trailer in qemu's order.
 *
 * @throws {InvalidArgumentError} with qemu's messages; {@link UnsupportedError} for a size beyond vdisk's range
 */
export async function readKoly(store: ByteStore, filename: string): Promise<KolyTrailer> {
  const offset = await findKoly(store);
  const t = await readHost(store, offset, SECTOR);
  const v = new DataView(t.buffer);
  const dataForkOffset = v.getBigUint64(0x18, false);
  if (dataForkOffset > BigInt(offset)) throw dmgInvalid(filename, offset + 0x18);
  const rsrcOffset = v.getBigUint64(0x28, false);
  const rsrcLength = v.getBigUint64(0x30, false);
  checkRegion(filename, rsrcOffset, rsrcLength, offset);
  const xmlOffset = v.getBigUint64(0xd8, false);
  const xmlLength = v.getBigUint64(0xe0, false);
  checkRegion(filename, xmlOffset, xmlLength, offset);
  const sectors = v.getBigInt64(0x1ec, false);
  if (sectors < 0n) throw dmgInvalid(filename, offset + 0x1ec);
  if (sectors > BigInt(Math.floor(LIMITS.maxOffset / SECTOR))) {
    throw new UnsupportedError(`dmg image size of ${sectors} sectors is beyond the ${LIMITS.maxOffset} bytes vdisk supports`, { offset: offset + 0x1ec });
  }
  return {
    offset,
    dataForkOffset,
    rsrcForkOffset: Number(rsrcOffset),
    rsrcForkLength: Number(rsrcLength),
    xmlOffset: Number(xmlOffset),
    xmlLength: Number(xmlLength),
    sectorCount: Number(sectors),
  };
}
