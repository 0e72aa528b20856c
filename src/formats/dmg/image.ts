/**
 * An open dmg (Apple UDIF disk image), read-only as in QEMU: the koly
 * trailer, the mish blocks from the resource fork or the XML property
 * list, then reads chunk by chunk. Raw chunks map onto the file, zero and
 * ignore chunks read as zeros, zlib, bzip2 and lzfse chunks are decoded whole
 * (a few kept decoded); sectors no readable chunk covers
 * fail with EIO, as in qemu.
 */
import type { ByteStore, CompressedExtent, Extent, FormatDescription, FormatImage, OpenOptions } from '../driver.js';
import { readFailed, refuseWritable } from '../read-only/common.js';
import { UnitCache } from '../read-only/unit-cache.js';
import { CHUNK, type ChunkTable, ChunkTableBuilder } from './chunks.js';
import { decodeChunk } from './decode.js';
import { dmgInvalid, readKoly } from './koly.js';
import { type MishContext, MishLimitError } from './mish.js';
import { readPlistXml, readResourceFork } from './resources.js';

const SECTOR = 512;
/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 1024;

/** qemu's warn_report_once: each warning at most once per process, however many images open. */
const warned = new Set<string>();

/** Reads the chunk table from wherever the trailer says it is. */
async function readChunks(store: ByteStore, options: OpenOptions): Promise<{ table: ChunkTable; sectors: number }> {
  const filename = options.filename;
  const koly = await readKoly(store, filename);
  const table = new ChunkTableBuilder();
  const ctx: MishContext = {
    table,
    dataForkOffset: koly.dataForkOffset,
    warnOnce: (message) => {
      if (warned.has(message)) return;
      warned.add(message);
      options.onWarning?.({ code: 'error-report', message: `warning: ${message}` });
    },
  };
  try {
    if (koly.rsrcForkLength !== 0) await readResourceFork(store, filename, koly.rsrcForkOffset, koly.rsrcForkLength, ctx);
    else if (koly.xmlLength !== 0) await readPlistXml(store, filename, koly.xmlOffset, koly.xmlLength, ctx);
    else throw dmgInvalid(filename, koly.offset);
  } catch (err) {
    if (!(err instanceof MishLimitError)) throw err;
    // qemu prints the limit through error_report, then fails the open with a bare EINVAL
    options.onWarning?.({ code: 'error-report', message: err.message });
    throw dmgInvalid(filename);
  }
  return { table: table.build(), sectors: koly.sectorCount };
}

/** Opens a dmg read-only. */
export async function openDmg(store: ByteStore, options: OpenOptions): Promise<DmgImage> {
  refuseWritable(options);
  const { table, sectors } = await readChunks(store, options);
  return new DmgImage(store, table, sectors * SECTOR);
}

/** One open dmg image. */
export class DmgImage implements FormatImage {
  readonly format = 'dmg';
  readonly store: ByteStore;
  readonly virtualSize: number;
  /** qemu's request alignment; chunks vary in size. */
  readonly granularity = SECTOR;
  readonly backing = undefined;
  /** qemu's dmg driver has no block status: everything is allocated data. */
  readonly opaqueStatus = true;
  readonly #table: ChunkTable;
  readonly #cache = new UnitCache();

  constructor(store: ByteStore, table: ChunkTable, virtualSize: number) {
    this.store = store;
    this.#table = table;
    this.virtualSize = virtualSize;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const t = this.#table;
    const out: Extent[] = [];
    const end = offset + length;
    for (let pos = offset; pos < end && out.length < Math.min(maxExtents, MAX_EXTENTS); ) {
      const i = t.find(Math.floor(pos / SECTOR));
      if (i < 0) {
        if (out.length > 0) break;
        throw readFailed();
      }
      const start = (t.sectors[i] as number) * SECTOR;
      const n = Math.min(end, start + (t.counts[i] as number) * SECTOR) - pos;
      out.push(this.#extent(i, pos, n, start));
      pos += n;
    }
    return out;
  }

  #extent(i: number, pos: number, n: number, start: number): Extent {
    const t = this.#table;
    const type = t.types[i] as number;
    if (type === CHUNK.zero || type === CHUNK.ignore) return { kind: 'zero', offset: pos, length: n, allocated: false };
    if (type === CHUNK.raw) {
      // a raw chunk holds `length` stored bytes; sectors past them read as zeros
      const stored = (t.lengths[i] as number) - (pos - start);
      const host = (t.offsets[i] as number) + (pos - start);
      if (stored <= 0 || !Number.isSafeInteger(host)) return { kind: 'zero', offset: pos, length: n, allocated: false };
      return { kind: 'data', offset: pos, length: Math.min(n, stored), store: this.store, hostOffset: host };
    }
    return { kind: 'compressed', offset: pos, length: n, hostOffset: t.offsets[i] as number, hostLength: t.lengths[i] as number, unitOffset: start };
  }

  async readCompressedPart(e: CompressedExtent, into: Uint8Array): Promise<void> {
    const i = this.#table.find(e.unitOffset / SECTOR);
    if (i < 0) throw readFailed();
    const unit = await this.#cache.get(i, (this.#table.counts[i] as number) * SECTOR, () => decodeChunk(this.store, this.#table, i));
    const at = e.offset - e.unitOffset;
    into.set(unit.subarray(at, at + into.length));
  }

  async describe(): Promise<FormatDescription> {
    return {};
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    await this.store.close();
  }
}
