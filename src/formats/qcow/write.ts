/**
 * Writing a qcow image as QEMU's qcow driver lays it out: new L2 tables and
 * data clusters at the end of the file rounded up to a cluster, compressed
 * clusters appended unaligned, nothing ever freed (qcow has no refcounts).
 * Data reaches the file before the table entry that points to it, so a
 * crash leaves unreferenced space at worst.
 *
 * Where QEMU leaves the unwritten part of a newly allocated cluster as file
 * zeros (encrypted zeros in an AES image), vdisk fills it from the old
 * compressed cluster or the backing file, so the guest view is kept.
 */
import { alignDown, alignUp } from '../../core/bytes.js';
import { CorruptImageError, IoError, UnsupportedError } from '../../core/errors.js';
import { QCOW_AES_SECTOR } from '../crypto/qcow-aes.js';
import type { ImageWriter } from '../driver.js';
import { deflateCluster, inflateCluster } from './compress.js';
import { QCOW_OFLAG_COMPRESSED } from './header.js';
import { keyRequired, type QcowState } from './image.js';
import { hostRange, L2Table } from './tables.js';

const ZEROS = new Uint8Array(1024 * 1024);

/** An L2 table and where it lives. */
interface PlacedTable {
  readonly offset: number;
  readonly table: L2Table;
}

/** Reads guest bytes of this image (with the backing fall-through). */
export type GuestReader = (offset: number, into: Uint8Array) => Promise<void>;

/** The writer of one open qcow image. */
export class QcowWriter implements ImageWriter {
  readonly #s: QcowState;
  readonly #readGuest: GuestReader;
  /** The file's length as far as this writer grew it (read once; every write here updates it). */
  #end: number | undefined;

  constructor(state: QcowState, readGuest: GuestReader) {
    this.#s = state;
    this.#readGuest = readGuest;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    if (s.encrypted && !s.cipher) throw keyRequired();
    // AES works on whole sectors: widen the request with the bytes around it
    if (s.encrypted && (offset % QCOW_AES_SECTOR !== 0 || data.length % QCOW_AES_SECTOR !== 0)) {
      const start = alignDown(offset, QCOW_AES_SECTOR);
      const buf = new Uint8Array(alignUp(offset + data.length, QCOW_AES_SECTOR) - start);
      await this.#readGuest(start, buf.subarray(0, QCOW_AES_SECTOR));
      await this.#readGuest(start + buf.length - QCOW_AES_SECTOR, buf.subarray(buf.length - QCOW_AES_SECTOR));
      buf.set(data, offset - start);
      return this.#writeAligned(start, buf);
    }
    return this.#writeAligned(offset, data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const s = this.#s;
    const cs = s.clusterSize;
    // qcow has no zero clusters: write zeros, except where this layer holds nothing and nothing lies below
    for (let pos = offset; pos < offset + length; ) {
      const n = Math.min(offset + length - pos, ZEROS.length - (pos % cs));
      if (s.backingReader || (await this.#allocatedIn(pos, n))) await this.write(pos, ZEROS.subarray(0, n));
      pos += n;
    }
  }

  async compressUnit(data: Uint8Array): Promise<Uint8Array | null> {
    return deflateCluster(this.#padded(data));
  }

  async writeCompressed(offset: number, data: Uint8Array, compressed?: Uint8Array | null): Promise<void> {
    const s = this.#s;
    // qemu's compressed writer stores clusters unencrypted even in an AES image; vdisk never stores plaintext there
    if (s.encrypted) return this.write(offset, data);
    const c = compressed === undefined ? await deflateCluster(this.#padded(data)) : compressed;
    if (c === null) return this.write(offset, data);
    const cluster = offset / s.clusterSize;
    const { offset: tableOffset, table, index } = await this.#tableFor(cluster);
    // appended where the file ends, not cluster-aligned, as qcow_co_pwritev_compressed does
    const host = await this.#fileEnd();
    await s.store.write(host, c);
    this.#grew(host + c.length);
    const shift = BigInt(63 - s.header.clusterBits);
    table.view.setBigUint64(index * 8, BigInt(host) | QCOW_OFLAG_COMPRESSED | (BigInt(c.length) << shift));
    await s.tables.writeL2Entries(tableOffset, table, index, 1);
    this.#grew(tableOffset + index * 8 + 8);
  }

  /** qemu's make_empty: a zeroed L1 table, and the file cut right after it. */
  async makeEmpty(): Promise<void> {
    const s = this.#s;
    const at = hostRange(s.header.l1TableOffset, s.tables.l1Size * 8);
    if (at === undefined) throw new UnsupportedError('File too large', { errno: 27 });
    const bytes = s.tables.l1Size * 8;
    for (let done = 0; done < bytes; done += ZEROS.length) await s.store.write(at + done, ZEROS.subarray(0, Math.min(ZEROS.length, bytes - done)));
    await s.store.truncate(at + bytes);
    this.#end = at + bytes;
    s.tables.clear();
  }

  /** Where new space starts: QEMU's bdrv_getlength, the file length in whole sectors. */
  async #fileEnd(): Promise<number> {
    this.#end ??= await this.#s.store.size();
    return alignUp(this.#end, QCOW_AES_SECTOR);
  }

  /** Notes that a write reached `end` (tables named by a damaged image may lie past the file's end). */
  #grew(end: number): void {
    if (this.#end !== undefined) this.#end = Math.max(this.#end, end);
  }

  #padded(data: Uint8Array): Uint8Array {
    if (data.length === this.#s.clusterSize) return data;
    const unit = new Uint8Array(this.#s.clusterSize);
    unit.set(data);
    return unit;
  }

  async #allocatedIn(offset: number, length: number): Promise<boolean> {
    const cs = this.#s.clusterSize;
    for (let c = Math.floor(offset / cs); c * cs < offset + length; c++) {
      const { entry } = await this.#entry(c);
      if (entry !== 0n) return true;
    }
    return false;
  }

  async #entry(cluster: number): Promise<{ entry: bigint }> {
    const s = this.#s;
    const l2Size = s.tables.l2Size;
    const l2Offset = await s.tables.l1(Math.floor(cluster / l2Size));
    if (l2Offset === 0n) return { entry: 0n };
    const table = await s.tables.l2(l2Offset);
    return { entry: table.entry(cluster % l2Size) };
  }

  /** The L2 table holding `cluster`'s entry, allocated (zeroed, at the cluster-aligned end of the file) when missing. */
  async #tableFor(cluster: number): Promise<PlacedTable & { index: number }> {
    const s = this.#s;
    const l2Size = s.tables.l2Size;
    const l1Index = Math.floor(cluster / l2Size);
    const index = cluster - l1Index * l2Size;
    const existing = await s.tables.l1(l1Index);
    if (existing !== 0n) {
      const offset = hostRange(existing, l2Size * 8);
      if (offset === undefined) throw new CorruptImageError(`L2 table offset 0x${existing.toString(16)} lies beyond any file vdisk can write`);
      return { offset, table: await s.tables.l2(existing), index };
    }
    const offset = alignUp(await this.#fileEnd(), s.clusterSize);
    const table = new L2Table(new Uint8Array(l2Size * 8));
    await s.store.write(offset, table.bytes);
    this.#grew(offset + table.bytes.length);
    await s.tables.setL1(l1Index, offset);
    const l1 = hostRange(s.header.l1TableOffset, s.tables.l1Size * 8);
    if (l1 !== undefined) this.#grew(l1 + l1Index * 8 + 8);
    s.tables.adoptL2(offset, table);
    return { offset, table, index };
  }

  /** Writes a request whose bytes need no widening, one L2 table's worth at a time. */
  async #writeAligned(offset: number, data: Uint8Array): Promise<void> {
    const cs = this.#s.clusterSize;
    const span = cs * this.#s.tables.l2Size;
    for (let pos = offset; pos < offset + data.length; ) {
      const tableEnd = Math.min(offset + data.length, (Math.floor(pos / span) + 1) * span);
      const placed = await this.#tableFor(Math.floor(pos / cs));
      await this.#writeInTable(placed, pos, data.subarray(pos - offset, tableEnd - offset));
      pos = tableEnd;
    }
  }

  /** Writes `data` at guest `offset`, all of it covered by one L2 table. */
  async #writeInTable(placed: PlacedTable & { index: number }, offset: number, data: Uint8Array): Promise<void> {
    const s = this.#s;
    const cs = s.clusterSize;
    const firstCluster = Math.floor(offset / cs);
    const end = offset + data.length;
    for (let pos = offset; pos < end; ) {
      const index = placed.index + Math.floor(pos / cs) - firstCluster;
      const entry = placed.table.entry(index);
      if (entry !== 0n && !(entry & QCOW_OFLAG_COMPRESSED)) {
        const n = Math.min(end - pos, alignUp(pos + 1, cs) - pos);
        await this.#overwrite(Number(entry), pos, data.subarray(pos - offset, pos - offset + n));
        pos += n;
        continue;
      }
      // a run of clusters that need space: one allocation, one data write, one table write
      let count = 1;
      while (pos - (pos % cs) + count * cs < end) {
        const next = placed.table.entry(index + count);
        if (next !== 0n && !(next & QCOW_OFLAG_COMPRESSED)) break;
        count++;
      }
      const runEnd = Math.min(end, pos - (pos % cs) + count * cs);
      await this.#allocate(placed, index, count, pos, data.subarray(pos - offset, runEnd - offset));
      pos = runEnd;
    }
  }

  /** Writes into an allocated, uncompressed cluster at host offset `host`. */
  async #overwrite(host: number, pos: number, chunk: Uint8Array): Promise<void> {
    const s = this.#s;
    if (host % QCOW_AES_SECTOR !== 0 || host > Number.MAX_SAFE_INTEGER - s.clusterSize) throw new IoError('Input/output error', { file: s.store.name });
    const at = host + (pos % s.clusterSize);
    let out = chunk;
    if (s.cipher) {
      out = new Uint8Array(chunk);
      s.cipher.encrypt(out, pos / QCOW_AES_SECTOR);
    }
    await s.store.write(at, out);
    this.#grew(at + out.length);
  }

  /**
   * Gives `count` clusters from table entry `index` on new space at the
   * cluster-aligned end of the file and writes `chunk` (guest `pos` on)
   * into them; their other bytes keep what the guest saw.
   */
  async #allocate(placed: PlacedTable, index: number, count: number, pos: number, chunk: Uint8Array): Promise<void> {
    const s = this.#s;
    const cs = s.clusterSize;
    const runStart = pos - (pos % cs);
    const host = alignUp(await this.#fileEnd(), cs);
    const partial = this.#partial(runStart, count, pos, chunk.length);
    const keep = partial.filter((i) => s.backingReader || placed.table.entry(index + i) & QCOW_OFLAG_COMPRESSED);
    if (!s.cipher && keep.length === 0) {
      // only the guest's bytes, the rest left to the file's zeros as QEMU leaves it
      if (pos - runStart + chunk.length < count * cs) await s.store.truncate(host + count * cs);
      await s.store.write(host + (pos - runStart), chunk);
    } else {
      const buf = new Uint8Array(count * cs);
      for (const i of keep) await this.#old(placed.table.entry(index + i), runStart + i * cs, buf.subarray(i * cs, (i + 1) * cs));
      buf.set(chunk, pos - runStart);
      s.cipher?.encrypt(buf, runStart / QCOW_AES_SECTOR);
      await s.store.write(host, buf);
    }
    this.#grew(host + count * cs);
    for (let i = 0; i < count; i++) placed.table.view.setBigUint64((index + i) * 8, BigInt(host + i * cs));
    await s.tables.writeL2Entries(placed.offset, placed.table, index, count);
    this.#grew(placed.offset + (index + count) * 8);
  }

  /** The clusters of a run (by position in it) that a write of `length` bytes at `pos` covers only in part. */
  #partial(runStart: number, count: number, pos: number, length: number): number[] {
    const cs = this.#s.clusterSize;
    const out: number[] = [];
    if (pos > runStart) out.push(0);
    if (pos + length < runStart + count * cs && (count > 1 || out.length === 0)) out.push(count - 1);
    return out;
  }

  /** What the guest saw in a cluster before its first write here: the old compressed content, else the backing file's. */
  async #old(entry: bigint, start: number, unit: Uint8Array): Promise<void> {
    if (entry & QCOW_OFLAG_COMPRESSED) await this.#inflateOld(entry, unit);
    else if (this.#s.backingReader) await this.#s.backingReader(start, unit);
  }

  async #inflateOld(entry: bigint, unit: Uint8Array): Promise<void> {
    const s = this.#s;
    const shift = BigInt(63 - s.header.clusterBits);
    const coffset = entry & ((1n << shift) - 1n);
    const csize = Number((entry >> shift) & BigInt(s.clusterSize - 1));
    const at = hostRange(coffset, csize);
    const input = new Uint8Array(csize);
    if (at !== undefined) await s.store.read(at, input);
    if (!(await inflateCluster(input, unit))) throw new IoError('Input/output error', { file: s.store.name, offset: at });
  }
}
