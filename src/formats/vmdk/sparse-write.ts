/**
 * Writing a sparse extent in place (monolithicSparse, twoGbMaxExtentSparse,
 * and QEMU-layout streamOptimized): grains are allocated at the end of the
 * extent file, then the grain tables (main and redundant) are updated, then
 * any new grain-directory entries, in that order, as QEMU does.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { splitAt } from '../../core/split.js';
import { encodeGrain } from './grain-codec.js';
import { GTE_ZEROED, SECTOR } from './layout.js';
import { type SparseExtent, tableBytes } from './sparse.js';

/** Reads guest bytes of the layers below (copy-on-write source). */
export type CowReader = (guestOffset: number, into: Uint8Array) => Promise<void>;

/** One in-place write session: tables touched and directory entries added. */
export class Session {
  readonly ext: SparseExtent;
  readonly tables = new Set<number>();
  readonly newDirs: number[] = [];
  constructor(ext: SparseExtent) {
    this.ext = ext;
  }

  /** The table of directory index `gdi`, made writable (allocated when missing). */
  async table(gdi: number): Promise<Uint32Array> {
    const ext = this.ext;
    let t = ext.dirty.get(gdi);
    if (!t) {
      const cur = await ext.table(gdi);
      if (cur) {
        t = cur.slice();
      } else {
        t = new Uint32Array(ext.geom.gtes);
        const size = ext.tableBytes;
        const at = ext.allocate(size);
        await ext.store.write(at, new Uint8Array(size));
        ext.gd[gdi] = at / SECTOR;
        if (ext.rgd) {
          const rat = ext.allocate(size);
          await ext.store.write(rat, new Uint8Array(size));
          ext.rgd[gdi] = rat / SECTOR;
        }
        this.newDirs.push(gdi);
      }
      ext.dirty.set(gdi, t);
    }
    this.tables.add(gdi);
    return t;
  }

  async set(gi: number, value: number): Promise<void> {
    const g = this.ext.geom.gtes;
    const t = await this.table(Math.floor(gi / g));
    t[gi % g] = value;
  }

  /** Puts touched tables, then new directory entries, on disk. */
  async commit(): Promise<void> {
    const ext = this.ext;
    for (const gdi of this.tables) {
      const t = ext.dirty.get(gdi);
      if (!t) continue;
      const bytes = tableBytes(t);
      const sector = ext.gd[gdi] ?? 0;
      await ext.store.write(sector * SECTOR, bytes);
      if (ext.rgd?.[gdi]) await ext.store.write(ext.rgd[gdi] * SECTOR, bytes);
      ext.dirty.delete(gdi);
      ext.forget(sector);
    }
    for (const gdi of this.newDirs) {
      const entry = (dir: Uint32Array): Uint8Array => tableBytes(dir, gdi, gdi + 1);
      await ext.store.write(ext.geom.gdOffset + gdi * 4, entry(ext.gd));
      if (ext.rgd) await ext.store.write(ext.geom.rgdOffset + gdi * 4, entry(ext.rgd));
    }
    this.tables.clear();
    this.newDirs.length = 0;
  }
}

function checkHost(ext: SparseExtent, host: number, gi: number): void {
  if (host < ext.geom.overheadBytes) {
    throw new CorruptImageError(`Grain table entry of grain ${gi} points into the extent's metadata (offset ${host})`, { file: ext.store.name, offset: host });
  }
}

/** Writes buffered (host, bytes) pieces, merging runs that are contiguous in both memory and file. */
async function writePieces(ext: SparseExtent, pieces: { host: number; buf: Uint8Array }[]): Promise<void> {
  let i = 0;
  while (i < pieces.length) {
    const first = pieces[i] as { host: number; buf: Uint8Array };
    let len = first.buf.length;
    let j = i + 1;
    for (; j < pieces.length; j++) {
      const p = pieces[j] as { host: number; buf: Uint8Array };
      const contiguous = p.buf.buffer === first.buf.buffer && p.buf.byteOffset === first.buf.byteOffset + len && p.host === first.host + len;
      if (!contiguous) break;
      len += p.buf.length;
    }
    await ext.store.write(first.host, new Uint8Array(first.buf.buffer, first.buf.byteOffset, len));
    i = j;
  }
}

/**
 * Writes `data` at extent-relative `rel` (guest offset `base + rel`),
 * allocating grains and copying the rest of each new grain from `cow`.
 */
export async function writeSparse(ext: SparseExtent, rel: number, data: Uint8Array, base: number, cow: CowReader | undefined): Promise<void> {
  if (ext.geom.compressed) throw new UnsupportedError('Could not write to allocated cluster for streamOptimized');
  const g = ext.geom.grainBytes;
  const s = new Session(ext);
  const pieces: { host: number; buf: Uint8Array }[] = [];
  for (const { index: gi, inUnit: inGrain, length: n, pos } of splitAt(rel, data.length, g)) {
    const piece = data.subarray(pos, pos + n);
    const st = await ext.grain(gi);
    if (st.kind === 'data') {
      checkHost(ext, st.host, gi);
      pieces.push({ host: st.host + inGrain, buf: piece });
    } else {
      let grain = piece;
      if (n < g) {
        grain = new Uint8Array(g);
        if (st.kind === 'unallocated' && cow) await cow(base + gi * g, grain);
        grain.set(piece, inGrain);
      }
      const host = ext.allocate(g);
      pieces.push({ host, buf: grain });
      await s.set(gi, host / SECTOR);
    }
  }
  await writePieces(ext, pieces);
  await s.commit();
}

/**
 * Makes extent-relative `[rel, rel+length)` read as zeros: whole grains
 * become zeroed-grain entries where the extent has the flag; grains that
 * already read as zeros are left alone; the rest is written as zeros.
 */
export async function writeZeroesSparse(ext: SparseExtent, rel: number, length: number, base: number, cow: CowReader | undefined): Promise<void> {
  const g = ext.geom.grainBytes;
  const s = new Session(ext);
  for (const { offset: pos, index: gi, inUnit: inGrain, length: n } of splitAt(rel, length, g)) {
    const st = await ext.grain(gi);
    const whole = inGrain === 0 && (n === g || pos + n === ext.capacity);
    if (st.kind === 'zero' || (st.kind === 'unallocated' && !cow)) {
      // already reads as zeros
    } else if (whole && ext.geom.zeroGrain) {
      await s.set(gi, GTE_ZEROED);
    } else {
      await s.commit();
      await writeSparse(ext, pos, new Uint8Array(n), base, cow);
    }
  }
  await s.commit();
}

/** Appends compressed grain `gi` and points its entry at it (QEMU-layout streamOptimized). */
export async function appendCompressedInPlace(ext: SparseExtent, gi: number, data: Uint8Array): Promise<void> {
  if ((await ext.gte(gi)) !== 0) throw new UnsupportedError('Could not write to allocated cluster for streamOptimized');
  const g = ext.geom.grainBytes;
  const bytes = await encodeGrain((gi * g) / SECTOR, data);
  // Compressed grains follow each other without grain alignment.
  ext.next = Math.max(ext.geom.overheadBytes, Math.ceil(ext.next / SECTOR) * SECTOR);
  const host = ext.allocate(bytes.length);
  await ext.store.write(host, bytes);
  const s = new Session(ext);
  await s.set(gi, host / SECTOR);
  await s.commit();
}
