/**
 * An open qcow image: mapping guest ranges through the L1/L2 tables, and
 * decoding the clusters that are not stored verbatim. Compressed clusters
 * and the clusters of an AES-encrypted image are both handed to the block
 * layer as whole units it asks this image to decode (readCompressed), so
 * block status reports them as data without a host offset, as qemu's
 * qcow_co_block_status does.
 */
import { InvalidArgumentError, IoError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { QCOW_AES_SECTOR, type QcowAesCipher } from '../crypto/qcow-aes.js';
import type { BackingReader, BackingRef, ByteStore, CompressedExtent, Extent, FormatDescription, FormatImage, ImageWriter } from '../driver.js';
import { inflateCluster } from './compress.js';
import { QCOW_OFLAG_COMPRESSED, type QcowHeader } from './header.js';
import type { L2Table, QcowTables } from './tables.js';
import { pushExtent } from '../extent-merge.js';

/** Most extents one mapping call returns (the caller loops). */
const MAX_EXTENTS = 1024;

/** How a unit is decoded: inflated, decrypted, or (a cluster qemu cannot read either) refused with EIO. */
export type QcowUnitKind = 'deflate' | 'aes' | 'eio';

/** A unit extent with the way to decode it. */
export interface QcowUnitExtent extends CompressedExtent {
  readonly unit: QcowUnitKind;
}

/** What an open image shares with its writer. */
export interface QcowState {
  readonly store: ByteStore;
  readonly header: QcowHeader;
  readonly virtualSize: number;
  readonly clusterSize: number;
  readonly tables: QcowTables;
  /** True when the header says AES (crypt_method 1). */
  readonly encrypted: boolean;
  /** The cipher, once a key was given (absent for `info`, which reads no data). */
  readonly cipher: QcowAesCipher | undefined;
  readonly backing: BackingRef | undefined;
  /** Reads the layers below, for copy-on-write (set by the block layer). */
  backingReader: BackingReader | undefined;
}

/** Refused reads of an encrypted image opened without its key (an `info` open). */
export function keyRequired(): InvalidArgumentError {
  return new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
}

/** A cluster's L2 entry decoded as one extent of `[pos, pos + n)`. */
export function entryExtent(s: QcowState, table: L2Table, index: number, pos: number, n: number): Extent {
  if (table.isZero(index)) return { kind: 'unallocated', offset: pos, length: n };
  const cs = s.clusterSize;
  const unitOffset = pos - (pos % cs);
  const entry = table.entry(index);
  const unit = (kind: QcowUnitKind, hostOffset: number, hostLength: number): QcowUnitExtent => ({ kind: 'compressed', offset: pos, length: n, hostOffset, hostLength, unitOffset, unit: kind });
  if (entry & QCOW_OFLAG_COMPRESSED) {
    const shift = BigInt(63 - s.header.clusterBits);
    const coffset = entry & ((1n << shift) - 1n);
    const csize = Number((entry >> shift) & BigInt(cs - 1));
    // past 2^53 the data lies beyond any file: QEMU reads zeros there, which never inflate
    return coffset > BigInt(LIMITS.maxOffset - cs) ? unit('eio', 0, 0) : unit('deflate', Number(coffset), csize);
  }
  if (entry > BigInt(LIMITS.maxOffset - cs)) {
    throw new UnsupportedError(`qcow cluster offset 0x${entry.toString(16)} is above ${LIMITS.maxOffset}, the largest vdisk handles`);
  }
  const host = Number(entry);
  // QEMU refuses to read a cluster that is not sector-aligned (EIO)
  if (host % QCOW_AES_SECTOR !== 0) return unit('eio', host, cs);
  if (s.encrypted) return unit('aes', host, cs);
  return { kind: 'data', offset: pos, length: n, store: s.store, hostOffset: host + (pos - unitOffset) };
}

/** One open qcow image. */
export class QcowImage implements FormatImage {
  readonly format = 'qcow';
  readonly store: ByteStore;
  readonly virtualSize: number;
  readonly granularity: number;
  readonly statusSpan: number;
  readonly backing: BackingRef | undefined;
  writer: ImageWriter | undefined;
  readonly #s: QcowState;

  constructor(state: QcowState) {
    this.#s = state;
    this.store = state.store;
    this.virtualSize = state.virtualSize;
    this.granularity = state.clusterSize;
    this.statusSpan = state.clusterSize; // qcow_co_block_status answers one cluster
    this.backing = state.backing;
  }

  attachBacking(reader: BackingReader | undefined): void {
    this.#s.backingReader = reader;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const s = this.#s;
    const cs = s.clusterSize;
    const span = cs * s.tables.l2Size;
    const end = offset + length;
    const out: Extent[] = [];
    const more = (): boolean => out.length < MAX_EXTENTS && out.length <= maxExtents;
    for (let pos = offset; pos < end && more(); ) {
      const l1Index = Math.floor(pos / span);
      const tableEnd = Math.min(end, (l1Index + 1) * span);
      const l2Offset = await s.tables.l1(l1Index);
      if (l2Offset === 0n) {
        pushExtent(out, { kind: 'unallocated', offset: pos, length: tableEnd - pos });
        pos = tableEnd;
        continue;
      }
      const table = await s.tables.l2(l2Offset);
      for (; pos < tableEnd && more(); ) {
        const cluster = Math.floor(pos / cs);
        const n = Math.min(tableEnd - pos, (cluster + 1) * cs - pos);
        pushExtent(out, entryExtent(s, table, cluster - l1Index * s.tables.l2Size, pos, n));
        pos += n;
      }
    }
    return out.length > maxExtents ? out.slice(0, maxExtents) : out;
  }

  /** Reads guest bytes of this layer, falling through to the backing file (the writer's read-modify-write). */
  async readGuest(offset: number, into: Uint8Array): Promise<void> {
    for (let pos = 0; pos < into.length; ) {
      for (const e of await this.mapping(offset + pos, into.length - pos)) {
        const sub = into.subarray(e.offset - offset, e.offset - offset + e.length);
        if (e.kind === 'data') await e.store.read(e.hostOffset, sub);
        else if (e.kind === 'compressed') {
          const unit = new Uint8Array(this.granularity);
          await this.readCompressed(e, unit);
          sub.set(unit.subarray(e.offset - e.unitOffset, e.offset - e.unitOffset + e.length));
        } else if (e.kind === 'unallocated' && this.#s.backingReader) await this.#s.backingReader(e.offset, sub);
        else sub.fill(0);
        pos = e.offset + e.length - offset;
      }
    }
  }

  async readCompressed(extent: CompressedExtent, unit: Uint8Array): Promise<void> {
    const e = extent as QcowUnitExtent;
    const s = this.#s;
    if (e.unit === 'eio') throw new IoError('Input/output error', { file: s.store.name, offset: e.hostOffset });
    if (e.unit === 'aes') {
      if (!s.cipher) throw keyRequired();
      await s.store.read(e.hostOffset, unit);
      s.cipher.decrypt(unit, e.unitOffset / QCOW_AES_SECTOR);
      return;
    }
    const input = new Uint8Array(e.hostLength);
    await s.store.read(e.hostOffset, input);
    if (!(await inflateCluster(input, unit))) throw new IoError('Input/output error', { file: s.store.name, offset: e.hostOffset });
  }

  async describe(): Promise<FormatDescription> {
    return { clusterSize: this.#s.clusterSize, dirty: false, ...(this.#s.encrypted ? { encrypted: true } : {}) };
  }

  async flush(): Promise<void> {
    if (!this.store.readOnly) await this.store.flush();
  }

  async close(): Promise<void> {
    if (this.writer && !this.store.readOnly) await this.store.flush();
    await this.store.close();
  }
}
