/**
 * Writing a dynamic or fixed VHDX. New payload blocks go at the end of the
 * file (1 MiB aligned), are written, and only then become visible through
 * the BAT. BAT updates go through the log the way qemu does it
 * (vhdx_log_write_and_flush), which is the spec's crash-safe order:
 *
 *   1. flush the new data (and the grown file);
 *   2. set a fresh log GUID in both headers (each header write flushed);
 *   3. write one log entry with the new BAT sectors, flush;
 *   4. write the BAT sectors in place, flush;
 *   5. clear the log GUID in both headers (the log is empty again).
 *
 * A crash before 3 completes leaves the old BAT (the new block is an
 * unreferenced tail of the file); after 3 the entry is replayed on the next
 * open. One log entry covers every BAT sector a write call changed.
 */
import { CorruptImageError } from '../../core/errors.js';
import type { ImageWriter } from '../driver.js';
import { payloadIndex } from './bat.js';
import { LOG_SECTOR_SIZE, MiB, PayloadState, randomGuid } from './constants.js';
import { updateHeaders } from './header-update.js';
import { descriptorSectors, serializeLogEntry } from './log.js';
import type { VhdxState } from './open.js';

const ZERO_CHUNK = new Uint8Array(MiB);

export class VhdxWriter implements ImageWriter {
  readonly #s: VhdxState;
  #visibleWriteDone = false;

  constructor(state: VhdxState) {
    this.#s = state;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.#beforeVisibleWrite();
    const { bat, geometry: g, store } = this.#s;
    const changed: { index: number; before: Uint8Array }[] = [];
    try {
      let pos = 0;
      while (pos < data.length) {
        const at = offset + pos;
        const block = Math.floor(at / g.blockSize);
        const inBlock = at - block * g.blockSize;
        const n = Math.min(data.length - pos, g.blockSize - inBlock);
        const i = payloadIndex(g, block);
        let host: number;
        if (bat.state(i) === PayloadState.FullyPresent) host = bat.offset(i);
        else {
          this.#checkAllocatable(i);
          host = await this.#allocateBlock();
          changed.push({ index: i, before: bat.bytes.slice(i * 8, i * 8 + 8) });
          bat.set(i, PayloadState.FullyPresent, host);
        }
        await store.write(host + inBlock, data.subarray(pos, pos + n));
        pos += n;
      }
      if (changed.length > 0) await this.#commitBat(changed.map((c) => c.index));
    } catch (err) {
      // Keep memory in line with the file: the old entries are still what the BAT says on disk.
      for (const c of changed.reverse()) bat.bytes.set(c.before, c.index * 8);
      throw err;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const { bat, geometry: g, store } = this.#s;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const block = Math.floor(pos / g.blockSize);
      const blockEnd = Math.min(end, (block + 1) * g.blockSize);
      const i = payloadIndex(g, block);
      // Unallocated and ZERO blocks of a non-differencing image already read as zeros.
      if (bat.state(i) === PayloadState.FullyPresent) {
        await this.#beforeVisibleWrite();
        const host = bat.offset(i) + (pos - block * g.blockSize);
        for (let off = 0; off < blockEnd - pos; off += ZERO_CHUNK.length) {
          const n = Math.min(ZERO_CHUNK.length, blockEnd - pos - off);
          await store.write(host + off, ZERO_CHUNK.subarray(0, n));
        }
      } else this.#checkAllocatable(i);
      pos = blockEnd;
    }
  }

  #checkAllocatable(i: number): void {
    const { bat } = this.#s;
    const st = bat.state(i);
    if (st === PayloadState.PartiallyPresent || st === 4 || st === PayloadState.FullyPresent) {
      throw new CorruptImageError(`VHDX BAT entry ${i} has state ${st}, which vdisk cannot write over`, { offset: bat.fileOffset + i * 8 });
    }
  }

  /** The spec asks for a new DataWriteGuid (and this session's FileWriteGuid) before the first guest-visible write. */
  async #beforeVisibleWrite(): Promise<void> {
    if (this.#visibleWriteDone) return;
    this.#s.current = await updateHeaders(this.#s.store, this.#s.current, { fileWriteGuid: this.#s.sessionGuid, newDataWriteGuid: true });
    this.#visibleWriteDone = true;
  }

  /** Grows the file by one block at the next 1 MiB boundary; the new block reads as zeros. */
  async #allocateBlock(): Promise<number> {
    const { store, geometry: g } = this.#s;
    const size = await store.size();
    const at = Math.ceil(size / MiB) * MiB;
    await store.truncate(at + g.blockSize);
    return at;
  }

  /** Writes the BAT sectors holding `indices` through the log (see the file comment). */
  async #commitBat(indices: readonly number[]): Promise<void> {
    const { bat, store } = this.#s;
    const sectorOffsets = [...new Set(indices.map((i) => bat.fileOffset + Math.floor((i * 8) / LOG_SECTOR_SIZE) * LOG_SECTOR_SIZE))].sort((a, b) => a - b);
    const logSectors = this.#s.current.header.logLength / LOG_SECTOR_SIZE;
    // One entry per batch that fits the log (in practice one batch: a 1 MiB log holds 250 BAT sectors).
    const perEntry = Math.max(1, logSectors - descriptorSectors(logSectors) - 1);
    for (let k = 0; k < sectorOffsets.length; k += perEntry) {
      const sectors = [];
      for (const fileOffset of sectorOffsets.slice(k, k + perEntry)) {
        const data = new Uint8Array(LOG_SECTOR_SIZE);
        await store.read(fileOffset, data);
        const from = fileOffset - bat.fileOffset;
        data.set(bat.bytes.subarray(from, Math.min(bat.bytes.length, from + LOG_SECTOR_SIZE)));
        sectors.push({ fileOffset, data });
      }
      await this.#logAndApply(sectors);
    }
  }

  async #logAndApply(sectors: { fileOffset: number; data: Uint8Array }[]): Promise<void> {
    const s = this.#s;
    const { store } = s;
    await store.flush();
    const logGuid = randomGuid();
    const fileSize = await store.size();
    const entry = serializeLogEntry({ sequence: 1n, logGuid, tail: 0, flushedFileOffset: fileSize, lastFileOffset: fileSize, sectors });
    const before = s.current.header;
    if (entry.length > before.logLength) throw new CorruptImageError(`VHDX log of ${before.logLength} bytes cannot hold a ${entry.length}-byte entry`, { offset: before.logOffset });
    s.current = await updateHeaders(store, s.current, { fileWriteGuid: s.sessionGuid, logGuid });
    const h = s.current.header;
    await store.write(h.logOffset, entry);
    await store.flush();
    for (const sec of sectors) await store.write(sec.fileOffset, sec.data);
    await store.flush();
    s.current = await updateHeaders(store, s.current, { fileWriteGuid: s.sessionGuid, logGuid: new Uint8Array(16) });
  }
}
