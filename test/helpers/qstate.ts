/**
 * Differential helpers for qcow2 header state (dirty/autoclear bits,
 * feature tables, bitmaps, snapshot tables): the same image in two
 * directories, one command run by qemu-img in one and by vdisk in the
 * other, and readers of the on-disk structures both tools leave behind.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { asVdisk, vdisk } from './cli.js';
import { qemuImg } from './qemu.js';

/** The same image, copied into a qemu-img directory and a vdisk directory. */
export interface Pair {
  readonly q: string;
  readonly v: string;
  readonly name: string;
}

let pairs = 0;

/** Copies `image` into two fresh directories under `root`, under the same name. */
export function pairOf(root: string, image: string, name = 'img.qcow2'): Pair {
  const n = ++pairs;
  const q = join(root, `q${n}`);
  const v = join(root, `v${n}`);
  mkdirSync(q);
  mkdirSync(v);
  copyFileSync(image, join(q, name));
  copyFileSync(image, join(v, name));
  return { q, v, name };
}

/** qemu-img's stderr as vdisk words it (the program name, also inside hints). */
export function normalise(text: string): string {
  return asVdisk(text).replaceAll("'qemu-img check", "'vdisk check");
}

/** Runs `args` (the image named `pair.name`) with both tools; asserts the same exit code, stdout and stderr. */
export function runBoth(pair: Pair, args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const q = qemuImg(args, { cwd: pair.q });
  const v = vdisk(args, { cwd: pair.v });
  const what = args.join(' ');
  assert.equal(v.status, q.status, `exit of ${what}\nqemu-img: ${q.stderr}\nvdisk: ${v.stderr}`);
  assert.equal(v.stdout, q.stdout, `stdout of ${what}`);
  assert.equal(v.stderr, normalise(q.stderr), `stderr of ${what}`);
  return { status: v.status, stdout: v.stdout, stderr: v.stderr };
}

/** The first `bytes` of a file. */
export function head(path: string, bytes = 4096): Buffer {
  const b = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, b, 0, bytes, 0);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export const EXT_BITMAPS = 0x23852875;
export const EXT_FEATURE_TABLE = 0x6803f857;

/**
 * The header extensions in the first bytes of an image: type → where the
 * data starts and its length. They follow the fixed header: byte 72 in v2,
 * the header length (byte 100) in v3.
 */
function extensionsIn(h: Buffer): Map<number, { offset: number; length: number }> {
  const out = new Map<number, { offset: number; length: number }>();
  if (h.length < 72) return out;
  let off = h.readUInt32BE(4) >= 3 && h.length >= 104 ? h.readUInt32BE(100) : 72;
  while (off + 8 <= h.length) {
    const type = h.readUInt32BE(off);
    const length = h.readUInt32BE(off + 4);
    if (type === 0) break;
    out.set(type, { offset: off + 8, length });
    off += 8 + Math.ceil(length / 8) * 8;
  }
  return out;
}

/**
 * The header with the bitmap directory's offset zeroed: vdisk keeps bitmaps
 * it never read where they are, where qemu rewrites every bitmap on close (a
 * deliberate difference; their content is compared separately).
 */
export function withoutBitmapDirOffset(header: Buffer): Buffer {
  const out = Buffer.from(header);
  const ext = extensionsIn(out).get(EXT_BITMAPS);
  if (ext && ext.offset + 24 <= out.length) out.fill(0, ext.offset + 16, ext.offset + 24);
  return out;
}

/** Writes `data` at `offset` of `path` in place. */
export function poke(path: string, offset: number, data: Uint8Array): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Sets (ORs in) `mask` in the big-endian u64 header field at `pos` (72 incompatible, 80 compatible, 88 autoclear). */
export function setHeaderBits(path: string, pos: number, mask: bigint): void {
  const h = head(path, pos + 8);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(h.readBigUInt64BE(pos) | mask);
  poke(path, pos, b);
}

/** Clears `mask` in the header field at `pos`. */
export function clearHeaderBits(path: string, pos: number, mask: bigint): void {
  const h = head(path, pos + 8);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(h.readBigUInt64BE(pos) & ~mask);
  poke(path, pos, b);
}

/** The header extensions of a v2/v3 image: type → [offset of the data, length]. */
export function extensions(path: string): Map<number, { offset: number; length: number }> {
  return extensionsIn(head(path, 65536));
}

/** Every persistent bitmap's flags and bits (hex), read straight from the file (none when the extension is absent). */
export function bitmapContents(path: string): { name: string; flags: number; bits: string }[] {
  const ext = extensions(path).get(EXT_BITMAPS);
  if (!ext) return [];
  const file = readFileSync(path);
  const cs = 2 ** file.readUInt32BE(20);
  const n = file.readUInt32BE(ext.offset);
  let e = Number(file.readBigUInt64BE(ext.offset + 16));
  const out: { name: string; flags: number; bits: string }[] = [];
  for (let i = 0; i < n; i++) {
    const table = Number(file.readBigUInt64BE(e));
    const size = file.readUInt32BE(e + 8);
    const flags = file.readUInt32BE(e + 12);
    const nameLen = file.readUInt16BE(e + 18);
    const extra = file.readUInt32BE(e + 20);
    const name = file.subarray(e + 24 + extra, e + 24 + extra + nameLen).toString();
    const parts: string[] = [];
    for (let k = 0; k < size; k++) {
      const entry = file.readBigUInt64BE(table + 8 * k);
      const off = Number(entry & 0x00fffffffffffe00n);
      parts.push(off ? file.subarray(off, off + cs).toString('hex') : (entry & 1n ? 'ones' : 'zeros'));
    }
    out.push({ name, flags, bits: parts.join('|') });
    e += Math.ceil((24 + extra + nameLen) / 8) * 8;
  }
  return out;
}

/** The snapshot table as stored: per entry its id, name, extra-data bytes (hex) and L1 offset. */
export function snapshotTable(path: string): { id: string; name: string; extra: string; l1: number }[] {
  const file = readFileSync(path);
  const n = file.readUInt32BE(60);
  let pos = Number(file.readBigUInt64BE(64));
  const out: { id: string; name: string; extra: string; l1: number }[] = [];
  for (let i = 0; i < n; i++) {
    const idLen = file.readUInt16BE(pos + 12);
    const nameLen = file.readUInt16BE(pos + 14);
    const extra = file.readUInt32BE(pos + 36);
    out.push({
      l1: Number(file.readBigUInt64BE(pos)),
      extra: file.subarray(pos + 40, pos + 40 + extra).toString('hex'),
      id: file.subarray(pos + 40 + extra, pos + 40 + extra + idLen).toString(),
      name: file.subarray(pos + 40 + extra + idLen, pos + 40 + extra + idLen + nameLen).toString(),
    });
    pos += Math.ceil((40 + extra + idLen + nameLen) / 8) * 8;
  }
  return out;
}

/**
 * Rewrites the snapshot table in place with only the first `keep` bytes of
 * each entry's extra data (0: as written by QEMU before 1.1; 8: the 64-bit
 * VM state size only). The table only shrinks, so it stays where it is.
 */
export function stripSnapshotExtra(path: string, keep: number): void {
  const file = readFileSync(path);
  const n = file.readUInt32BE(60);
  const start = Number(file.readBigUInt64BE(64));
  let pos = start;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const idLen = file.readUInt16BE(pos + 12);
    const nameLen = file.readUInt16BE(pos + 14);
    const extra = file.readUInt32BE(pos + 36);
    const fixed = Buffer.from(file.subarray(pos, pos + 40));
    fixed.writeUInt32BE(keep, 36);
    const body = Buffer.concat([fixed, file.subarray(pos + 40, pos + 40 + keep), file.subarray(pos + 40 + extra, pos + 40 + extra + idLen + nameLen)]);
    parts.push(Buffer.concat([body, Buffer.alloc((8 - (body.length % 8)) % 8)]));
    pos += Math.ceil((40 + extra + idLen + nameLen) / 8) * 8;
  }
  const table = Buffer.concat(parts);
  poke(path, start, Buffer.concat([table, Buffer.alloc(pos - start - table.length)]));
}

type Json = Record<string, unknown>;

/** qemu-img info's JSON as both tools' images must agree on it: paths and disk usage left out. */
function infoState(path: string): Json {
  const info = qemuImg(['info', '--output=json', path]);
  const parsed = info.status === 0 ? (JSON.parse(info.stdout) as Json) : { error: info.stderr };
  delete parsed['filename'];
  delete parsed['actual-size'];
  delete parsed['full-backing-filename'];
  return parsed;
}

/** qemu-img check's JSON and exit status, the path left out. */
function checkState(path: string): { check: Json; checkStatus: number | null } {
  const check = qemuImg(['check', '--output=json', path]);
  const checked = check.stdout ? (JSON.parse(check.stdout) as Json) : { error: check.stderr };
  delete checked['filename'];
  return { check: checked, checkStatus: check.status };
}

/** How many host clusters have a non-zero refcount: everything the image uses (metadata, data, snapshots, bitmaps). */
export function clustersInUse(path: string): number {
  const file = readFileSync(path);
  const cs = 2 ** file.readUInt32BE(20);
  const width = 2 ** (file.readUInt32BE(4) >= 3 ? file.readUInt32BE(96) : 4);
  const table = Number(file.readBigUInt64BE(48));
  const tableBytes = file.readUInt32BE(56) * cs;
  let used = 0;
  for (let t = table; t < table + tableBytes && t + 8 <= file.length; t += 8) {
    const block = Number(file.readBigUInt64BE(t) & 0xfffffffffffffe00n);
    if (!block) continue;
    const bits = file.subarray(block, block + cs);
    for (let i = 0; i < (cs * 8) / width; i++) {
      const bit = i * width;
      const nonZero = width < 8 ? (bits[bit >> 3]! >> (bit & 7)) & ((1 << width) - 1) : bits.subarray(bit >> 3, (bit + width) >> 3).some((b) => b !== 0);
      if (nonZero) used++;
    }
  }
  return used;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * Asserts qemu-img check agrees on `v` (vdisk's) and `q` (qemu-img's).
 * With persistent bitmaps, vdisk keeps the clusters of bitmaps it never
 * read where they are while qemu moves every bitmap to new clusters, so
 * the images may end at different offsets: there the end offset is left
 * out, and vdisk must use no more clusters and no host space past qemu's
 * file instead. Everything else (leaks, errors, allocation) must be equal.
 */
export function assertSameCheck(v: string, q: string, what: string): void {
  const cv = checkState(v);
  const cq = checkState(q);
  if (extensions(v).has(EXT_BITMAPS) && extensions(q).has(EXT_BITMAPS)) {
    const cs = 2 ** head(q, 24).readUInt32BE(20);
    const qEnd = roundUp(statSync(q).size, cs);
    assert.ok(clustersInUse(v) <= clustersInUse(q), `clusters in use of ${what}: ${clustersInUse(v)} > ${clustersInUse(q)}`);
    assert.ok(roundUp(statSync(v).size, cs) <= qEnd, `file size of ${what}: ${statSync(v).size} > ${statSync(q).size}`);
    assert.ok(Number(cv.check['image-end-offset']) <= qEnd, `image end of ${what}: ${String(cv.check['image-end-offset'])} past ${qEnd}`);
    delete cv.check['image-end-offset'];
    delete cq.check['image-end-offset'];
  }
  assert.deepEqual(cv, cq, `check of ${what}`);
}

/** Asserts the two images of `pair` agree: header cluster bytes, qemu-img's info and check, bitmaps. */
export function assertSameImage(pair: Pair, what: string, headerBytes = 4096): void {
  const q = join(pair.q, pair.name);
  const v = join(pair.v, pair.name);
  assert.deepEqual(withoutBitmapDirOffset(head(v, headerBytes)), withoutBitmapDirOffset(head(q, headerBytes)), `header of ${what}`);
  assert.deepEqual(infoState(v), infoState(q), `info of ${what}`);
  assertSameCheck(v, q, what);
  assert.deepEqual(bitmapContents(v), bitmapContents(q), `bitmaps of ${what}`);
}
