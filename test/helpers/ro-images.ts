/**
 * Builders of read-only-format images (dmg, cloop, bochs) written from the
 * formats' specifications, for variants QEMU's sample images do not cover.
 * Independent of vdisk's parsers, so tests compare two implementations.
 */
import { spawnSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';

import { encodeLzfse } from './lzfse-fse-encode.js';

const SECTOR = 512;

/** DMG chunk types (UDIF block types). */
export const DMG = {
  zero: 0x00000000,
  raw: 0x00000001,
  ignore: 0x00000002,
  adc: 0x80000004,
  zlib: 0x80000005,
  bzip2: 0x80000006,
  lzfse: 0x80000007,
  comment: 0x7ffffffe,
  end: 0xffffffff,
} as const;

/** bzip2-compresses with the bzip2 CLI (as Apple's hdiutil writes UDBZ chunks). */
export function bzip2(data: Uint8Array, level = 9): Uint8Array {
  const r = spawnSync('bzip2', ['-c', `-${level}`], { input: data, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`bzip2 failed: ${String(r.stderr)}`);
  return new Uint8Array(r.stdout);
}

/** One chunk of a dmg: its type and guest content (sectors), or explicit stored bytes. */
export interface DmgChunkSpec {
  readonly type: number;
  /** Guest sectors the chunk covers. */
  readonly sectors: number;
  /** Guest content (raw, zlib, bzip2, lzfse chunks); zeros when absent. */
  readonly data?: Uint8Array;
  /** Bytes stored in the data fork, overriding what `data` would encode to. */
  readonly stored?: Uint8Array;
  /** The stored length the entry records, when it should lie. */
  readonly length?: number;
}

/** A mish block: chunks starting at guest sector `firstSector`. */
export interface DmgBlockSpec {
  readonly firstSector: number;
  readonly chunks: readonly DmgChunkSpec[];
}

/** What {@link makeDmg} builds. */
export interface DmgSpec {
  readonly blocks: readonly DmgBlockSpec[];
  /** Where the mish blocks are: the XML property list (default) or a classic resource fork. */
  readonly container?: 'xml' | 'rsrc';
  /** The trailer's sector count (default: the end of the last block). */
  readonly sectorCount?: number;
}

function be32(v: DataView, at: number, n: number): void {
  v.setUint32(at, n >>> 0, false);
}
function be64(v: DataView, at: number, n: number): void {
  v.setBigUint64(at, BigInt(n), false);
}

function encodeChunk(c: DmgChunkSpec): Uint8Array {
  if (c.stored) return c.stored;
  const data = c.data ?? new Uint8Array(c.sectors * SECTOR);
  switch (c.type) {
    case DMG.raw:
      return data;
    case DMG.zlib:
      return new Uint8Array(deflateSync(data));
    case DMG.bzip2:
      return bzip2(data);
    case DMG.lzfse:
      return encodeLzfse(data, ['v2', 'lzvn', 'raw']);
    default:
      return new Uint8Array(0);
  }
}

function mish(block: DmgBlockSpec, fork: Uint8Array[], forkStart: { at: number }): Uint8Array {
  const entries: DmgChunkSpec[] = [...block.chunks, { type: DMG.end, sectors: 0 }];
  const out = new Uint8Array(204 + 40 * entries.length);
  const v = new DataView(out.buffer);
  be32(v, 0, 0x6d697368);
  be32(v, 4, 1);
  be64(v, 8, block.firstSector);
  be64(v, 16, block.chunks.reduce((s, c) => s + c.sectors, 0));
  be64(v, 24, 0); // chunk offsets below are absolute in the data fork
  be32(v, 200, entries.length);
  let sector = 0;
  entries.forEach((c, i) => {
    const at = 204 + 40 * i;
    const bytes = c.type === DMG.end ? new Uint8Array(0) : encodeChunk(c);
    be32(v, at, c.type);
    be64(v, at + 8, sector);
    be64(v, at + 16, c.sectors);
    be64(v, at + 24, forkStart.at);
    be64(v, at + 32, c.length ?? bytes.length);
    fork.push(bytes);
    forkStart.at += bytes.length;
    sector += c.sectors;
  });
  return out;
}

function plist(blocks: readonly Uint8Array[]): Uint8Array {
  const items = blocks
    .map((b, i) => `\t\t\t<dict>\n\t\t\t\t<key>Attributes</key>\n\t\t\t\t<string>0x0050</string>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n\t\t\t\t${(Buffer.from(b).toString('base64').match(/.{1,44}/g) ?? []).join('\n\t\t\t\t')}\n\t\t\t\t</data>\n\t\t\t\t<key>ID</key>\n\t\t\t\t<string>${i}</string>\n\t\t\t</dict>\n`)
    .join('');
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
    `<plist version="1.0">\n<dict>\n\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n${items}\t\t</array>\n\t</dict>\n</dict>\n</plist>\n`;
  return new TextEncoder().encode(xml);
}

/** A classic resource fork: 16-byte header, data at 256, each resource a u32 length then its bytes, then an empty map. */
function resourceFork(blocks: readonly Uint8Array[]): Uint8Array {
  const dataLen = blocks.reduce((s, b) => s + 4 + b.length, 0);
  const out = new Uint8Array(256 + dataLen + 30);
  const v = new DataView(out.buffer);
  be32(v, 0, 256);
  be32(v, 4, 256 + dataLen);
  be32(v, 8, dataLen);
  be32(v, 12, 30);
  let at = 256;
  for (const b of blocks) {
    be32(v, at, b.length);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/** Builds a UDIF image: data fork, then the XML plist or resource fork, then the 512-byte koly trailer. */
export function makeDmg(spec: DmgSpec): Uint8Array {
  const fork: Uint8Array[] = [];
  const pos = { at: 0 };
  const blocks = spec.blocks.map((b) => mish(b, fork, pos));
  const dataLen = pos.at;
  const meta = spec.container === 'rsrc' ? resourceFork(blocks) : plist(blocks);
  const out = new Uint8Array(dataLen + meta.length + 512);
  let at = 0;
  for (const f of fork) {
    out.set(f, at);
    at += f.length;
  }
  out.set(meta, dataLen);
  const k = new DataView(out.buffer, dataLen + meta.length, 512);
  be32(k, 0, 0x6b6f6c79);
  be32(k, 4, 4);
  be32(k, 8, 512);
  be32(k, 12, 1);
  be64(k, 0x18, 0); // data fork offset
  be64(k, 0x20, dataLen);
  if (spec.container === 'rsrc') {
    be64(k, 0x28, dataLen);
    be64(k, 0x30, meta.length);
  } else {
    be64(k, 0xd8, dataLen);
    be64(k, 0xe0, meta.length);
  }
  const last = spec.blocks.reduce((m, b) => Math.max(m, b.firstSector + b.chunks.reduce((s, c) => s + c.sectors, 0)), 0);
  be64(k, 0x1ec, spec.sectorCount ?? last);
  return out;
}

/** cloop V2.0's shell preamble (128 bytes with padding). */
export const CLOOP_PREAMBLE = '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n';

/** Builds a cloop V2.0 image: preamble, block size, block count, n+1 offsets, zlib blocks. */
export function makeCloop(blockSize: number, data: Uint8Array): Uint8Array {
  const n = Math.ceil(data.length / blockSize);
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(blockSize);
    b.set(data.subarray(i * blockSize, (i + 1) * blockSize));
    blocks.push(new Uint8Array(deflateSync(b)));
  }
  const head = 128 + 8 + 8 * (n + 1);
  const out = new Uint8Array(head + blocks.reduce((s, b) => s + b.length, 0));
  out.set(new TextEncoder().encode(CLOOP_PREAMBLE));
  const v = new DataView(out.buffer);
  be32(v, 128, blockSize);
  be32(v, 132, n);
  let at = head;
  blocks.forEach((b, i) => {
    be64(v, 136 + 8 * i, at);
    out.set(b, at);
    at += b.length;
  });
  be64(v, 136 + 8 * n, at);
  return out;
}

/** What {@link makeBochs} builds: a growing redolog. */
export interface BochsSpec {
  readonly version: 1 | 2;
  readonly diskSize: number;
  readonly extentSize: number;
  /** Guest content; extents holding any non-zero sector are allocated, with only those sectors marked in the bitmap. */
  readonly data: Uint8Array;
}

/** Builds a Bochs growing redolog (bximage's layout: header, catalog, then bitmap+extent blocks). */
export function makeBochs(spec: BochsSpec): Uint8Array {
  const { extentSize: es, diskSize } = spec;
  const catalog = Math.ceil(diskSize / es);
  const bitmapSize = Math.ceil(es / SECTOR / 8);
  const bitmapBlocks = Math.ceil(bitmapSize / SECTOR);
  const headerSize = 512;
  const dataOffset = headerSize + catalog * 4;
  const perExtent = (bitmapBlocks * SECTOR) + es;
  const cat = new Uint32Array(catalog).fill(0xffffffff);
  const extents: { idx: number; bitmap: Uint8Array; body: Uint8Array }[] = [];
  for (let e = 0; e < catalog; e++) {
    const body = new Uint8Array(es);
    body.set(spec.data.subarray(e * es, Math.min((e + 1) * es, spec.data.length)));
    const bitmap = new Uint8Array(bitmapBlocks * SECTOR);
    let any = false;
    for (let s = 0; s < es / SECTOR; s++) {
      if (body.subarray(s * SECTOR, (s + 1) * SECTOR).some((b) => b !== 0)) {
        bitmap[s >> 3] = (bitmap[s >> 3] as number) | (1 << (s & 7));
        any = true;
      }
    }
    if (any) {
      cat[e] = extents.length;
      extents.push({ idx: e, bitmap, body });
    }
  }
  // Extents are placed in reverse order of their index, to show the catalog is followed.
  extents.reverse().forEach((x, i) => (cat[x.idx] = i));
  const out = new Uint8Array(Math.ceil(dataOffset / SECTOR) * SECTOR + extents.length * perExtent);
  const base = dataOffset;
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode('Bochs Virtual HD Image'), 0);
  out.set(new TextEncoder().encode('Redolog'), 32);
  out.set(new TextEncoder().encode('Growing'), 48);
  v.setUint32(64, spec.version === 1 ? 0x00010000 : 0x00020000, true);
  v.setUint32(68, headerSize, true);
  v.setUint32(72, catalog, true);
  v.setUint32(76, bitmapSize, true);
  v.setUint32(80, es, true);
  v.setBigUint64(spec.version === 1 ? 84 : 88, BigInt(diskSize), true);
  for (let i = 0; i < catalog; i++) v.setUint32(headerSize + 4 * i, cat[i] as number, true);
  extents.forEach((x, i) => {
    out.set(x.bitmap, base + i * perExtent);
    out.set(x.body, base + i * perExtent + bitmapBlocks * SECTOR);
  });
  return out;
}

/** Deterministic pseudo-random bytes (xorshift), so fixtures need no files. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
