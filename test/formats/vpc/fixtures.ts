/**
 * VHD fixtures qemu-img cannot make, built byte by byte from the VHD spec
 * (independently of src/formats/vpc, so the two cannot share a mistake):
 * differencing disks with parent locators and partial sector bitmaps, and
 * disks stamped with other creators (Hyper-V `win `, Azure `wa\0\0`).
 *
 * Dynamic/differencing layout written here:
 * ```
 *      0  footer copy (512)
 *    512  dynamic header (1024): cookie, BAT offset, entries, block size,
 *         parent id/time/name (UTF-16BE), 8 locators
 *   1536  BAT (entries × 4, padded to 512)
 *      …  locator data (512 each, UTF-16LE paths)
 *      …  blocks: bitmap (512) + data (block size)
 *      …  footer (512)
 * ```
 *
 * A differencing disk records its parent: the dynamic header's Parent
 * Unique ID (offset 40) is the unique ID of the parent's footer (offset 68),
 * and its Parent Time Stamp (offset 56) the parent's modification time
 * (here the footer time stamp). Pass the parent's {@link footerUniqueId}.
 */
import { writeFileSync } from 'node:fs';

/** A deterministic pseudo-random byte stream. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const buf = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
  return buf;
}

/** The 5 MiB raw source: data, written zeros, a hole, odd-offset data, data at the end. */
export function writeSource(path: string): Buffer {
  const size = 5 * 1024 * 1024;
  const buf = Buffer.alloc(size);
  pseudoRandom(1024 * 1024, 7).copy(buf, 0);
  buf.fill(0x55, 3 * 1024 * 1024 + 100, 3 * 1024 * 1024 + 700);
  pseudoRandom(65536, 9).copy(buf, 4 * 1024 * 1024 + 12345);
  buf.fill(0xaa, size - 4096);
  writeFileSync(path, buf);
  return buf;
}

function checksum(buf: Buffer, skipAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < skipAt || i >= skipAt + 4) sum = (sum + (buf[i] as number)) >>> 0;
  return ~sum >>> 0;
}

/** The spec's CHS algorithm (16 heads max, no rounding up). */
export function specChs(size: number): { c: number; h: number; s: number } {
  const total = Math.min(Math.floor(size / 512), 65535 * 16 * 255);
  let s: number;
  let h: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    s = 255;
    h = 16;
    cth = Math.floor(total / s);
  } else {
    s = 17;
    cth = Math.floor(total / s);
    h = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= h * 1024 || h > 16) {
      s = 31;
      h = 16;
      cth = Math.floor(total / s);
    }
    if (cth >= h * 1024) {
      s = 63;
      h = 16;
      cth = Math.floor(total / s);
    }
  }
  return { c: Math.floor(cth / h), h, s };
}

/** The timestamp every fixture footer carries (seconds since 2000-01-01 UTC). */
export const FIXTURE_TIMESTAMP = 700000000;

/** The unique ID a fixture footer gets unless one is given (deterministic per size and type). */
export function defaultUniqueId(size: number, type: number): Buffer {
  return pseudoRandom(16, size + type);
}

/** The unique ID (footer offset 68) of a built VHD, read from its last sector. */
export function footerUniqueId(image: Uint8Array): Buffer {
  return Buffer.from(image.subarray(image.length - 512 + 68, image.length - 512 + 84));
}

/** A footer. `type` 2 fixed, 3 dynamic, 4 differencing. */
export function footer(o: { type: number; size: number; creator: string; dataOffset?: number; chs?: { c: number; h: number; s: number }; uniqueId?: Uint8Array | undefined }): Buffer {
  const b = Buffer.alloc(512);
  b.write('conectix', 0, 'latin1');
  b.writeUInt32BE(2, 8);
  b.writeUInt32BE(0x00010000, 12);
  if (o.dataOffset === undefined) b.fill(0xff, 16, 24);
  else b.writeBigUInt64BE(BigInt(o.dataOffset), 16);
  b.writeUInt32BE(FIXTURE_TIMESTAMP, 24);
  b.write(o.creator.padEnd(4, '\0'), 28, 'latin1');
  b.writeUInt32BE(0x000a0000, 32);
  b.write('Wi2k', 36, 'latin1');
  b.writeBigUInt64BE(BigInt(o.size), 40);
  b.writeBigUInt64BE(BigInt(o.size), 48);
  const chs = o.chs ?? specChs(o.size);
  b.writeUInt16BE(chs.c, 56);
  b[58] = chs.h;
  b[59] = chs.s;
  b.writeUInt32BE(o.type, 60);
  b.set((o.uniqueId ?? defaultUniqueId(o.size, o.type)).subarray(0, 16), 68);
  b.writeUInt32BE(checksum(b, 64), 64);
  return b;
}

/** One allocated block: bitmap bits (MSB first) for which sectors it holds, and its data. */
export interface FixtureBlock {
  readonly index: number;
  /** Sector ranges [first, end) marked present. */
  readonly present: readonly (readonly [number, number])[];
  readonly data: Buffer;
}

/** A locator to write. */
export interface FixtureLocator {
  readonly platform: 'W2ru' | 'W2ku';
  readonly path: string;
}

/** Builds a dynamic (type 3) or differencing (type 4) VHD. */
export function buildDynamic(o: {
  type: 3 | 4;
  size: number;
  creator: string;
  blockSize: number;
  blocks: readonly FixtureBlock[];
  parentName?: string;
  /** Differencing disks: the parent footer's unique ID (required by the spec). */
  parentUniqueId?: Uint8Array;
  /** This disk's own unique ID (default: {@link defaultUniqueId}). */
  uniqueId?: Uint8Array;
  locators?: readonly FixtureLocator[];
}): Buffer {
  const entries = Math.ceil(o.size / o.blockSize);
  const batBytes = Math.ceil((entries * 4) / 512) * 512;
  const locators = o.locators ?? [];
  const locAt = 1536 + batBytes;
  let next = locAt + locators.length * 512;
  const bitmapSize = Math.ceil(o.blockSize / 512 / 8 / 512) * 512;
  const parts: [number, Buffer][] = [];
  const bat = Buffer.alloc(batBytes, 0xff);
  for (const blk of o.blocks) {
    bat.writeUInt32BE(next / 512, blk.index * 4);
    const bitmap = Buffer.alloc(bitmapSize);
    for (const [a, b] of blk.present) for (let s = a; s < b; s++) bitmap[s >> 3] = (bitmap[s >> 3] as number) | (0x80 >> (s & 7));
    parts.push([next, bitmap], [next + bitmapSize, blk.data]);
    next += bitmapSize + o.blockSize;
  }
  const h = Buffer.alloc(1024);
  h.write('cxsparse', 0, 'latin1');
  h.fill(0xff, 8, 16);
  h.writeBigUInt64BE(1536n, 16);
  h.writeUInt32BE(0x00010000, 24);
  h.writeUInt32BE(entries, 28);
  h.writeUInt32BE(o.blockSize, 32);
  if (o.type === 4) {
    if (!o.parentUniqueId) throw new Error('a differencing VHD fixture needs the parent footer\'s unique ID');
    h.set(o.parentUniqueId.subarray(0, 16), 40);
    h.writeUInt32BE(FIXTURE_TIMESTAMP, 56);
    const name = Buffer.from(o.parentName ?? '', 'utf16le').swap16();
    name.copy(h, 64, 0, Math.min(name.length, 512));
  }
  locators.forEach((l, i) => {
    const data = Buffer.from(l.path, 'utf16le');
    const at = 576 + i * 24;
    h.write(l.platform, at, 'latin1');
    h.writeUInt32BE(512, at + 4);
    h.writeUInt32BE(data.length, at + 8);
    h.writeBigUInt64BE(BigInt(locAt + i * 512), at + 16);
    parts.push([locAt + i * 512, data]);
  });
  h.writeUInt32BE(checksum(h, 36), 36);
  const f = footer({ type: o.type, size: o.size, creator: o.creator, dataOffset: 512, uniqueId: o.uniqueId });
  const out = Buffer.alloc(next + 512);
  f.copy(out, 0);
  h.copy(out, 512);
  bat.copy(out, 1536);
  for (const [at, b] of parts) b.copy(out, at);
  f.copy(out, next);
  return out;
}

/** Builds a fixed VHD holding `data` (its length is the current size). */
export function buildFixed(data: Buffer, creator: string): Buffer {
  return Buffer.concat([data, footer({ type: 2, size: data.length, creator })]);
}
