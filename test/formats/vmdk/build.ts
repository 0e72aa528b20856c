/**
 * Test helper: VMDK fixtures built straight from the VMware Virtual Disk
 * Format 1.1 specification (independent of the driver's own serializers),
 * for layouts qemu-img cannot make.
 *
 * Hosted sparse extent (all little-endian), one 512-byte header sector:
 *   0 magic "KDMV" | 4 version u32 | 8 flags u32 | 12 capacity u64 (sectors)
 *  20 grainSize u64 | 28 descriptorOffset u64 | 36 descriptorSize u64
 *  44 numGTEsPerGT u32 | 48 rgdOffset u64 | 56 gdOffset u64 | 64 overHead u64
 *  72 uncleanShutdown u8 | 73 "\n \r\n" | 77 compressAlgorithm u16
 * then [descriptor][redundant GD][redundant GTs][GD][GTs] ... grains.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { SYSTEM_PYTHON } from '../../helpers/python.js';

export interface SparseSpec {
  /** Guest sectors. */
  readonly capacity: number;
  readonly grainSectors?: number;
  readonly gtes?: number;
  /** Keep a redundant grain directory (flag bit 1). */
  readonly redundant?: boolean;
  /** Zeroed-grain GTEs (flag bit 2). */
  readonly zeroGrain?: boolean;
  /** Embedded descriptor text (monolithicSparse) or none (extent of a descriptor file). */
  readonly descriptor?: string | undefined;
  /** Grain index → content ('zero' = GTE 1). Every grain is stored in full. */
  readonly grains?: ReadonlyMap<number, Uint8Array | 'zero'>;
}

const S = 512;

function le32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v, true);
}

function le64(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setBigUint64(off, BigInt(v), true);
}

/** Builds one hosted sparse extent file. */
export function buildSparse(spec: SparseSpec): Uint8Array {
  const grain = spec.grainSectors ?? 128;
  const gtes = spec.gtes ?? 512;
  const gtCount = Math.ceil(spec.capacity / (grain * gtes));
  const gdSectors = Math.ceil((gtCount * 4) / S);
  const gtSectors = Math.ceil((gtes * 4) / S);
  const descSectors = spec.descriptor === undefined ? 0 : 20;
  let at = 1 + descSectors;
  const rgd = spec.redundant ? at : 0;
  if (spec.redundant) at += gdSectors + gtCount * gtSectors;
  const gd = at;
  at += gdSectors + gtCount * gtSectors;
  const overhead = Math.ceil(at / grain) * grain;
  const grains = [...(spec.grains ?? new Map<number, Uint8Array | 'zero'>()).entries()].sort((a, b) => a[0] - b[0]);
  const dataGrains = grains.filter(([, v]) => v !== 'zero');
  const out = new Uint8Array((overhead + dataGrains.length * grain) * S);
  out.set([0x4b, 0x44, 0x4d, 0x56], 0);
  le32(out, 4, spec.zeroGrain ? 2 : 1);
  le32(out, 8, 1 | (spec.redundant ? 2 : 0) | (spec.zeroGrain ? 4 : 0));
  le64(out, 12, spec.capacity);
  le64(out, 20, grain);
  le64(out, 28, descSectors ? 1 : 0);
  le64(out, 36, descSectors);
  le32(out, 44, gtes);
  le64(out, 48, rgd);
  le64(out, 56, gd);
  le64(out, 64, overhead);
  out.set([0x0a, 0x20, 0x0d, 0x0a], 73);
  if (spec.descriptor !== undefined) out.set(Buffer.from(spec.descriptor, 'latin1'), S);
  for (const dir of spec.redundant ? [rgd, gd] : [gd]) {
    for (let i = 0; i < gtCount; i++) le32(out, dir * S + i * 4, dir + gdSectors + i * gtSectors);
  }
  let next = overhead;
  for (const [gi, v] of grains) {
    const entry = v === 'zero' ? 1 : next;
    for (const dir of spec.redundant ? [rgd, gd] : [gd]) {
      const gt = dir + gdSectors + Math.floor(gi / gtes) * gtSectors;
      le32(out, gt * S + (gi % gtes) * 4, entry);
    }
    if (v !== 'zero') {
      out.set(v.subarray(0, grain * S), next * S);
      next += grain;
    }
  }
  return out;
}

/** A descriptor file's text in VMware's layout. */
export function descriptorFile(opts: { createType: string; extents: readonly string[]; cid?: string; parentCid?: string; parentHint?: string }): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    `CID=${opts.cid ?? '12345678'}`,
    `parentCID=${opts.parentCid ?? 'ffffffff'}`,
    ...(opts.parentHint ? [`parentFileNameHint="${opts.parentHint}"`] : []),
    `createType="${opts.createType}"`,
    '',
    '# Extent description',
    ...opts.extents,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    'ddb.adapterType = "ide"',
    '',
  ].join('\n');
}

/** Deterministic bytes. */
export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A raw disk with data, zeros and holes: random head, a 0x55 run, a tail. */
export function mixedRaw(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let off = 0; off < Math.min(size, 1 << 20); off += 4096) b.set(pattern(100, off + 1), off);
  const mid = Math.floor(size / 2);
  b.fill(0x55, mid, Math.min(size, mid + 70000));
  b.set(pattern(1000, 7), size - 1000);
  return b;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

const PYVMDK = `
import sys, hashlib, pyvmdk
h = pyvmdk.handle()
h.open(sys.argv[1])
h.open_extent_data_files()
size = h.get_media_size()
d = hashlib.sha256()
off = 0
while off < size:
    n = min(1 << 20, size - off)
    d.update(h.read_buffer_at_offset(n, off))
    off += n
print(size, d.hexdigest())
`;

/** True when the libyal reader is importable. */
export const hasPyvmdk = spawnSync(SYSTEM_PYTHON, ['-c', 'import pyvmdk'], { encoding: 'utf8' }).status === 0;

/** `size sha256` of the disk as pyvmdk reads it. */
export function pyvmdkDigest(path: string): string {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', PYVMDK, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pyvmdk failed on ${path}: ${r.stderr}`);
  return r.stdout.trim();
}
