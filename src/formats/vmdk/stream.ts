/**
 * streamOptimized output, strictly append-only (VMware's stream layout):
 * the header says GD_AT_END; grains (marker + zlib data) are appended as
 * they come; grain tables are appended behind a GT marker once the stream
 * moves past them; on flush/close the grain directory, the footer (a copy
 * of the header with the real GD offset) and the end-of-stream marker are
 * appended. Nothing already written is ever rewritten.
 */
import { LIMITS } from '../../core/limits.js';
import { encodeGrain, metadataMarker } from './grain-codec.js';
import { serializeVmdk4Header, type Vmdk4Header } from './header.js';
import { GRAIN_MARKER_BYTES, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, SECTOR } from './layout.js';
import { type SparseExtent, tableBytes } from './sparse.js';

/** Where compressed grains go (stream layout or QEMU's in-place layout). */
export interface GrainSink {
  readonly ext: SparseExtent;
  /** Appends grain `gi` (the grain's bytes, cut at the extent's end). */
  emit(gi: number, data: Uint8Array): Promise<void>;
  /** Puts every pending piece of metadata on disk. */
  finish(): Promise<void>;
}

function sectors(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

/** The metadata tail of a stream image (GD, footer, EOS) as one buffer. */
export function streamTail(gd: Uint32Array, header: Vmdk4Header, at: number): Uint8Array {
  const gdSectors = sectors(gd.length * 4);
  const out = new Uint8Array((1 + gdSectors + 3) * SECTOR);
  out.set(metadataMarker(gdSectors, MARKER_GD), 0);
  out.set(tableBytes(gd), SECTOR);
  const footerAt = (1 + gdSectors) * SECTOR;
  out.set(metadataMarker(1, MARKER_FOOTER), footerAt);
  out.set(serializeVmdk4Header({ ...header, gdOffset: at / SECTOR + 1 }), footerAt + SECTOR);
  out.set(metadataMarker(0, MARKER_EOS), footerAt + 2 * SECTOR);
  return out;
}

/** Appends to a GD_AT_END image. */
export class StreamSink implements GrainSink {
  readonly ext: SparseExtent;
  readonly #header: Vmdk4Header;
  #at: number;
  #current = -1;
  #changed = false;

  /** `at`: first byte that may be written (after every grain and every table kept below it). */
  constructor(ext: SparseExtent, header: Vmdk4Header, at: number) {
    this.ext = ext;
    this.#header = header;
    this.#at = at;
  }

  /** Where the next byte goes (tests check it only grows). */
  get position(): number {
    return this.#at;
  }

  async emit(gi: number, data: Uint8Array): Promise<void> {
    const ext = this.ext;
    const gdi = Math.floor(gi / ext.geom.gtes);
    if (this.#current >= 0 && gdi !== this.#current && ext.dirty.has(this.#current)) await this.#appendTable(this.#current);
    if (ext.dirty.size >= LIMITS.vmdkMaxDirtyStreamTables) for (const k of [...ext.dirty.keys()]) await this.#appendTable(k);
    this.#current = gdi;
    let t = ext.dirty.get(gdi);
    if (!t) {
      t = (await ext.table(gdi))?.slice() ?? new Uint32Array(ext.geom.gtes);
      ext.dirty.set(gdi, t);
    }
    const bytes = await encodeGrain((gi * ext.geom.grainBytes) / SECTOR, data);
    const host = this.#append(bytes.length);
    await ext.store.write(host, bytes);
    t[gi % ext.geom.gtes] = host / SECTOR;
    this.#changed = true;
  }

  async finish(): Promise<void> {
    if (!this.#changed) return;
    const ext = this.ext;
    for (const k of [...ext.dirty.keys()].sort((a, b) => a - b)) await this.#appendTable(k);
    const tail = streamTail(ext.gd, this.#header, this.#at);
    const at = this.#append(tail.length);
    await ext.store.write(at, tail);
    this.#changed = false;
  }

  #append(bytes: number): number {
    const at = this.#at;
    this.#at += sectors(bytes) * SECTOR;
    return at;
  }

  async #appendTable(gdi: number): Promise<void> {
    const ext = this.ext;
    const t = ext.dirty.get(gdi);
    if (!t) return;
    const body = tableBytes(t);
    const buf = new Uint8Array(SECTOR + sectors(body.length) * SECTOR);
    buf.set(metadataMarker(sectors(body.length), MARKER_GT), 0);
    buf.set(body, SECTOR);
    const at = this.#append(buf.length);
    await ext.store.write(at, buf);
    const old = ext.gd[gdi] ?? 0;
    if (old) ext.forget(old);
    ext.gd[gdi] = at / SECTOR + 1;
    ext.dirty.delete(gdi);
  }
}

/**
 * Prepares an existing GD_AT_END image for appending: finds the end of its
 * last grain, and moves every grain table at or after it into the dirty
 * set (they will be appended again), so nothing still in use is overwritten.
 */
export async function openStreamSink(ext: SparseExtent, header: Vmdk4Header): Promise<StreamSink> {
  let end = ext.geom.overheadBytes;
  for (let gdi = 0; gdi < ext.gd.length; gdi++) {
    const t = await ext.table(gdi);
    if (!t) continue;
    let max = 0;
    for (const v of t) if (v > max) max = v;
    if (max === 0) continue;
    const m = new Uint8Array(GRAIN_MARKER_BYTES);
    await ext.store.read(max * SECTOR, m);
    const size = ext.geom.markers ? new DataView(m.buffer).getUint32(8, true) : ext.geom.grainBytes * LIMITS.vmdkMaxCompressedGrainFactor;
    end = Math.max(end, Math.ceil((max * SECTOR + GRAIN_MARKER_BYTES + size) / SECTOR) * SECTOR);
  }
  for (let gdi = 0; gdi < ext.gd.length; gdi++) {
    const sector = ext.gd[gdi] ?? 0;
    if (sector === 0 || sector * SECTOR < end) continue;
    const t = await ext.table(gdi);
    if (t) ext.dirty.set(gdi, t.slice());
  }
  return new StreamSink(ext, header, end);
}
