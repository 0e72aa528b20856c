/**
 * mish blocks (BLKX tables): a 204-byte header, then 40-byte chunk entries,
 * all big-endian. Parsed as QEMU's dmg_read_mish_block does: blocks that
 * are not mish or shorter than 244 bytes are skipped, chunks of types
 * vdisk cannot decode are left out (reads there fail), and the size limits
 * are checked per chunk.
 *
 * ```
 *  header: 0 'mish', 8 first sector u64, 0x18 data offset u64
 *  chunk:  0 type u32, 8 sector u64, 0x10 sector count u64,
 *          0x18 stored offset u64, 0x20 stored length u64
 * ```
 */
import { LIMITS } from '../../core/limits.js';
import { CHUNK, type ChunkTableBuilder } from './chunks.js';

const MISH = 0x6d697368;
const HEADER = 204;
const ENTRY = 40;
const U64 = (1n << 64n) - 1n;

/** Where parsing reports: the open's warnings and qemu's error_report lines. */
export interface MishContext {
  readonly table: ChunkTableBuilder;
  /** The trailer's data fork offset: base of every chunk's stored offset. */
  readonly dataForkOffset: bigint;
  /** qemu's warn_report_once (each text at most once per process). */
  warnOnce(message: string): void;
}

/** A mish block QEMU refuses: the open fails with EINVAL after this error_report line. */
export class MishLimitError extends Error {}

function toNumber(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
}

/** Types vdisk decodes: qemu's list with its dmg-bz2 and dmg-lzfse modules (which Debian's qemu-img lacks). */
function isKnown(type: number): boolean {
  return type === CHUNK.zero || type === CHUNK.raw || type === CHUNK.ignore || type === CHUNK.zlib || type === CHUNK.bzip2 || type === CHUNK.lzfse;
}

function warnUnknown(type: number, ctx: MishContext): void {
  if (type !== CHUNK.comment && type !== CHUNK.end) ctx.warnOnce(`Image contains chunks of unknown type ${type.toString(16)}, accessing them will result in I/O errors`);
}

/**
 * Adds the chunks of one block to the table.
 *
 * @throws {MishLimitError} with qemu's error_report text when a chunk exceeds a size limit
 */
export function parseMish(block: Uint8Array, ctx: MishContext): void {
  if (block.length < HEADER + ENTRY) return;
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (v.getUint32(0, false) !== MISH) return;
  const firstSector = v.getBigUint64(8, false);
  const inOffset = (ctx.dataForkOffset + v.getBigUint64(0x18, false)) & U64;
  const count = Math.floor((block.length - HEADER) / ENTRY);
  for (let k = 0; k < count; k++) {
    const at = HEADER + k * ENTRY;
    const type = v.getUint32(at, false);
    if (!isKnown(type)) {
      warnUnknown(type, ctx);
      continue;
    }
    const sectors = v.getBigUint64(at + 0x10, false);
    // qemu numbers chunks by the slot they take: skipped types take none
    const chunkNo = ctx.table.size;
    if (type !== CHUNK.zero && type !== CHUNK.ignore && sectors > BigInt(LIMITS.dmgMaxChunkSectors)) {
      throw new MishLimitError(`sector count ${sectors} for chunk ${chunkNo} is larger than max (${LIMITS.dmgMaxChunkSectors})`);
    }
    const length = v.getBigUint64(at + 0x20, false);
    if (length > BigInt(LIMITS.dmgMaxChunkBytes)) {
      throw new MishLimitError(`length ${length} for chunk ${chunkNo} is larger than max (${LIMITS.dmgMaxChunkBytes})`);
    }
    ctx.table.add({
      type,
      sector: toNumber((v.getBigUint64(at + 8, false) + firstSector) & U64),
      sectors: toNumber(sectors),
      offset: toNumber((v.getBigUint64(at + 0x18, false) + inOffset) & U64),
      length: Number(length),
    });
  }
}
