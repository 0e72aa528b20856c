/**
 * VHDX fixtures qemu-img cannot make, built to MS-VHDX by hand: a
 * 4096-byte-logical-sector image, a differencing image over a parent, and
 * an image with a dirty log. Layouts come from the driver's own
 * serializers (checked separately against qemu-img), but block placement,
 * BAT entries, sector bitmaps and log entries are written here directly.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { Bat, batGeometry, bitmapIndex, payloadIndex } from '../../../src/formats/vhdx/bat.js';
import {
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SIZE,
  MiB,
  PayloadState,
  SB_PRESENT,
  guidText,
} from '../../../src/formats/vhdx/constants.js';
import { buildVhdx, type VhdxLayout } from '../../../src/formats/vhdx/create.js';
import { selectHeader, serializeHeader } from '../../../src/formats/vhdx/header.js';
import { serializeLogEntry } from '../../../src/formats/vhdx/log.js';
import { serializeParentLocator } from '../../../src/formats/vhdx/parent-locator.js';
import { MemoryStore } from '../../../src/io/memory-store.js';

/** A deterministic byte pattern. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Appends a block of `data` (block-sized, zero-padded) at the next MiB and points BAT entry `index` at it. */
async function placeBlock(store: MemoryStore, bat: Bat, index: number, state: number, blockSize: number, data: Uint8Array): Promise<number> {
  const at = Math.ceil((await store.size()) / MiB) * MiB;
  await store.truncate(at + blockSize);
  await store.write(at, data);
  bat.set(index, state, at);
  return at;
}

async function readBat(store: MemoryStore, layout: VhdxLayout, entries: number): Promise<Bat> {
  const bytes = new Uint8Array(entries * 8);
  await store.read(layout.batOffset, bytes);
  return new Bat(bytes, layout.batOffset);
}

/** A dynamic image with 4096-byte logical sectors: returns the file and the guest bytes it holds. */
export async function make4kImage(): Promise<{ file: Uint8Array; guest: Uint8Array }> {
  const size = 5 * MiB + 3 * 4096;
  const blockSize = MiB;
  const store = new MemoryStore('4k.vhdx');
  const layout = await buildVhdx(store, { size, logSize: MiB, blockSize, fixed: false, useZeroBlocks: false, logicalSectorSize: 4096 });
  const g = batGeometry(size, blockSize, 4096, false);
  const bat = await readBat(store, layout, g.totalEntries);
  const guest = new Uint8Array(size);
  const b0 = pattern(blockSize, 7);
  guest.set(b0, 0);
  await placeBlock(store, bat, payloadIndex(g, 0), PayloadState.FullyPresent, blockSize, b0);
  bat.set(payloadIndex(g, 2), PayloadState.Zero, 0);
  const last = pattern(size - 5 * blockSize, 9);
  guest.set(last, 5 * blockSize);
  await placeBlock(store, bat, payloadIndex(g, 5), PayloadState.FullyPresent, blockSize, last);
  await store.write(layout.batOffset, bat.bytes);
  return { file: store.bytes(), guest };
}

/** What the differencing fixture holds. */
export interface DiffFixture {
  readonly file: Uint8Array;
  /** Guest view given the parent's guest bytes. */
  expected(parent: Uint8Array): Uint8Array;
}

/**
 * A differencing image over `parentPath` (recorded as relative_path
 * `.\<parentName>`), 1 MiB blocks: block 0 fully present (pattern), block 1
 * partially present (every third 512-byte sector from a pattern, the rest
 * from the parent), block 2 ZERO, the others NOT_PRESENT (parent).
 */
export async function makeDifferencing(parentPath: string, parentName: string, size: number): Promise<DiffFixture> {
  const parentHeader = selectHeader(readFileSync(parentPath).subarray(HEADER1_OFFSET, HEADER1_OFFSET + HEADER_SIZE), readFileSync(parentPath).subarray(HEADER2_OFFSET, HEADER2_OFFSET + HEADER_SIZE));
  const locator = serializeParentLocator([
    ['parent_linkage', guidText(parentHeader.header.dataWriteGuid).toLowerCase()],
    ['relative_path', `.\\${parentName}`],
    ['absolute_win32_path', `C:\\images\\${parentName}`],
  ]);
  const blockSize = MiB;
  const store = new MemoryStore('diff.vhdx');
  const layout = await buildVhdx(store, { size, logSize: MiB, blockSize, fixed: false, useZeroBlocks: false, parentLocator: locator });
  const g = batGeometry(size, blockSize, 512, true);
  const bat = await readBat(store, layout, g.totalEntries);
  const full = pattern(blockSize, 21);
  await placeBlock(store, bat, payloadIndex(g, 0), PayloadState.FullyPresent, blockSize, full);
  const partial = pattern(blockSize, 22);
  await placeBlock(store, bat, payloadIndex(g, 1), PayloadState.PartiallyPresent, blockSize, partial);
  const bitmap = new Uint8Array(MiB);
  const present = (s: number): boolean => s % 3 === 0;
  for (let s = 0; s < g.sectorsPerBlock; s++) if (present(s)) {
      const bit = g.sectorsPerBlock + s;
      bitmap[bit >> 3] = (bitmap[bit >> 3] ?? 0) | (1 << (bit & 7));
    }
  await placeBlock(store, bat, bitmapIndex(g, 1), SB_PRESENT, MiB, bitmap);
  bat.set(payloadIndex(g, 2), PayloadState.Zero, 0);
  await store.write(layout.batOffset, bat.bytes);
  return {
    file: store.bytes(),
    expected(parent: Uint8Array): Uint8Array {
      const out = new Uint8Array(size);
      out.set(parent.subarray(0, size));
      out.set(full, 0);
      for (let s = 0; s < g.sectorsPerBlock; s++) if (present(s)) out.set(partial.subarray(s * 512, s * 512 + 512), blockSize + s * 512);
      out.fill(0, 2 * blockSize, 3 * blockSize);
      return out;
    },
  };
}

/**
 * Makes a qemu-made dynamic image dirty: a log entry (new GUID in a newer
 * header) that points payload block `block` at a new block of 0x77 bytes
 * appended to the file (a BAT-sector data descriptor) and zeroes 8 KiB at
 * the start of the block holding guest offset 0 (a zero descriptor). The
 * BAT and the data in place are left as they were: only replay shows them.
 */
export function makeDirtyLog(path: string, block: number): void {
  const file = Buffer.from(readFileSync(path));
  const cur = selectHeader(file.subarray(HEADER1_OFFSET, HEADER1_OFFSET + HEADER_SIZE), file.subarray(HEADER2_OFFSET, HEADER2_OFFSET + HEADER_SIZE));
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  // Region table 1: BAT is entry 0 in qemu's images.
  const batOffset = Number(v.getBigUint64(192 * 1024 + 16 + 16, true));
  const blockSize = 8 * MiB; // qemu's default for images ≤ 1 GiB
  const g = batGeometry(blockSize * 4, blockSize, 512, false);
  const i = payloadIndex(g, block);
  const newBlock = Math.ceil(file.length / MiB) * MiB;
  const grown = Buffer.alloc(newBlock + blockSize, 0x77);
  file.copy(grown, 0, 0, file.length);
  grown.fill(0, file.length, newBlock);
  const sectorOff = batOffset + Math.floor((i * 8) / 4096) * 4096;
  const sector = new Uint8Array(grown.subarray(sectorOff, sectorOff + 4096));
  const bat = new Bat(sector, sectorOff);
  bat.set((i * 8 - (sectorOff - batOffset)) / 8, PayloadState.FullyPresent, newBlock);
  const block0 = Number(v.getBigUint64(batOffset, true) >> 20n) * MiB;
  const logGuid = new Uint8Array(16).fill(0x5a);
  const entry = serializeLogEntry({
    sequence: 7n,
    logGuid,
    tail: 0,
    flushedFileOffset: grown.length,
    lastFileOffset: grown.length,
    sectors: [{ fileOffset: sectorOff, data: sector }],
    zeros: [{ fileOffset: block0, length: 8192 }],
  });
  grown.set(entry, cur.header.logOffset);
  const next = { ...cur.header, sequenceNumber: cur.header.sequenceNumber + 1n, logGuid };
  grown.set(serializeHeader(next), cur.slot === 0 ? HEADER2_OFFSET : HEADER1_OFFSET);
  writeFileSync(path, grown);
}
