/**
 * Damages qcow2 images in known ways, for check/repair tests. Works on
 * images with 16-bit refcounts and standard L2 entries whose first L2
 * table maps guest clusters 0 and 1 (write them first).
 */
import { openSync, closeSync, readSync, writeSync, fstatSync, ftruncateSync } from 'node:fs';

/** The kinds of damage {@link damageQcow2} makes. */
export const DAMAGES = [
  'leak',
  'refcount-zero',
  'l2-beyond-eof',
  'l2-unaligned',
  'l2-shared',
  'copied-wrong',
  'l1-beyond-eof',
  'refblock-outside',
  'refblock-zeroed',
] as const;

/** One kind of damage. */
export type Damage = (typeof DAMAGES)[number];

function u64(fd: number, pos: number): bigint {
  const b = Buffer.alloc(8);
  readSync(fd, b, 0, 8, pos);
  return b.readBigUInt64BE(0);
}

function put64(fd: number, pos: number, v: bigint): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  writeSync(fd, b, 0, 8, pos);
}

function put16(fd: number, pos: number, v: number): void {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  writeSync(fd, b, 0, 2, pos);
}

const OFFSET = 0x00fffffffffffe00n;
const COPIED = 1n << 63n;

/** Applies `kind` to the image at `path` (in place). */
export function damageQcow2(path: string, kind: Damage): void {
  const fd = openSync(path, 'r+');
  try {
    const hdr = Buffer.alloc(104);
    readSync(fd, hdr, 0, 104, 0);
    const cs = 2 ** hdr.readUInt32BE(20);
    const l1 = Number(hdr.readBigUInt64BE(40));
    const rt = Number(hdr.readBigUInt64BE(48));
    const l2 = Number(u64(fd, l1) & OFFSET);
    const rb = Number(u64(fd, rt) & OFFSET);
    const e0 = u64(fd, l2);
    const e1 = u64(fd, l2 + 8);
    const size = fstatSync(fd).size;
    switch (kind) {
      case 'leak': {
        const c = Math.ceil(size / cs);
        ftruncateSync(fd, (c + 1) * cs);
        put16(fd, rb + 2 * c, 1);
        break;
      }
      case 'refcount-zero':
        put16(fd, rb + 2 * Number((e1 & OFFSET) / BigInt(cs)), 0);
        break;
      case 'l2-beyond-eof':
        put64(fd, l2 + 8, COPIED | 0x100000000n);
        break;
      case 'l2-unaligned':
        put64(fd, l2 + 8, e1 + 0x200n);
        break;
      case 'l2-shared':
        put64(fd, l2 + 8, e0);
        break;
      case 'copied-wrong':
        put64(fd, l2, e0 & ~COPIED);
        break;
      case 'l1-beyond-eof':
        put64(fd, l1, COPIED | 0x100000000n);
        break;
      case 'refblock-outside':
        put64(fd, rt, 0x1000000000n);
        break;
      case 'refblock-zeroed':
        writeSync(fd, Buffer.alloc(cs), 0, cs, rb);
        break;
    }
  } finally {
    closeSync(fd);
  }
}
