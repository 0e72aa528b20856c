/**
 * The tar-wrapped outputs: an OVA (ustar: the OVF descriptor, the
 * stream-optimized VMDK, a SHA-256 manifest last) and GCE's `disk.raw` in
 * a gzip'd oldgnu tar. Both are produced in order, so they stream to a
 * file, a pipe or an upload; an OVA's length is known before its first
 * byte, a .tar.gz's is not (gzip's output length is only known at its end).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';

import { UnsupportedError } from '../../core/errors.js';
import { tarLength, tarStream, type TarEntry } from '../../core/tar-writer.js';
import type { ImageTarget } from '../../block/chain.js';
import { convert, type ConvertOptions } from '../convert.js';
import { convertToStream } from '../convert-stream.js';
import { ovfDescriptor } from './ovf.js';
import type { Preset } from './types.js';

/** An archive ready to be read: its length when known first, and its bytes. */
export interface ArchiveOutput {
  readonly length: number | undefined;
  readonly stream: Readable;
  /** Removes any scratch file (call once the stream is read or abandoned). */
  readonly cleanup: () => Promise<void>;
}

interface DiskBytes {
  readonly length: number;
  readonly data: () => AsyncIterable<Uint8Array>;
  readonly cleanup: () => Promise<void>;
}

function streamOptions(opts: ConvertOptions): Pick<ConvertOptions, 'sourceFormat' | 'trust' | 'forceShare' | 'onWarning' | 'signal'> {
  return { sourceFormat: opts.sourceFormat, trust: opts.trust, forceShare: opts.forceShare, onWarning: opts.onWarning, signal: opts.signal };
}

/**
 * The disk's bytes in `preset.format`: streamed when the format has a
 * stream writer, else written to a private scratch file first (the
 * streamOptimized VMDK writer lands with the streaming work; the archive
 * is the same either way).
 */
async function diskBytes(source: ImageTarget, preset: Preset, opts: ConvertOptions): Promise<DiskBytes> {
  try {
    const out = await convertToStream(source, { ...streamOptions(opts), targetFormat: preset.format, options: preset.options.length ? preset.options : undefined });
    return { length: out.length, data: () => out.stream, cleanup: async () => void out.stream.destroy() };
  } catch (err) {
    if (!(err instanceof UnsupportedError)) throw err;
  }
  const dir = await fsp.mkdtemp(join(tmpdir(), 'vdisk-preset-'));
  const cleanup = (): Promise<void> => fsp.rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, `disk.${preset.format}`);
    await convert(source, file, { ...streamOptions(opts), targetFormat: preset.format, options: [...preset.options] });
    return { length: (await fsp.stat(file)).size, data: () => createReadStream(file), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** `data`, its SHA-256 taken as it passes. */
async function* hashing(data: AsyncIterable<Uint8Array>, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for await (const chunk of data) {
    hash.update(chunk);
    yield chunk;
  }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The OVA: descriptor, disk, manifest (its digest lines have a fixed length, so the total is known first). */
function ovaEntries(name: string, disk: DiskBytes, virtualSize: number): TarEntry[] {
  const diskName = `${name}-disk1.vmdk`;
  const ovf = new TextEncoder().encode(ovfDescriptor({ name, diskFile: diskName, fileSize: disk.length, capacity: virtualSize }));
  const diskHash = createHash('sha256');
  const ovfHash = createHash('sha256').update(ovf).digest('hex');
  const manifest = (hex: string): Uint8Array => new TextEncoder().encode(`SHA256(${name}.ovf)= ${ovfHash}\nSHA256(${diskName})= ${hex}\n`);
  return [
    { name: `${name}.ovf`, length: ovf.length, data: () => once(ovf) },
    { name: diskName, length: disk.length, data: () => hashing(disk.data(), diskHash) },
    { name: `${name}.mf`, length: manifest('0'.repeat(64)).length, data: () => once(manifest(diskHash.digest('hex'))) },
  ];
}

/** The base name an OVA's entries are called by: the target's, without its extension. */
export function packageName(target: string): string {
  return basename(target).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'disk';
}

/**
 * Produces `source` as `preset`'s archive. `virtualSize` is the disk's
 * size after the preset's rounding (the raw disk is padded with zeros up
 * to it; a VMDK records the source's size).
 */
export async function archiveOutput(source: ImageTarget, preset: Preset, name: string, virtualSize: number, opts: ConvertOptions): Promise<ArchiveOutput> {
  const disk = await diskBytes(source, preset, opts);
  if (preset.archive === 'ova') {
    const entries = ovaEntries(name, disk, virtualSize);
    return { length: tarLength(entries.map((e) => e.length)), stream: Readable.from(tarStream(entries, 'ustar')), cleanup: disk.cleanup };
  }
  const entries: TarEntry[] = [{ name: 'disk.raw', length: virtualSize, data: disk.data }];
  const tar = Readable.from(tarStream(entries, 'oldgnu', Math.floor(Date.now() / 1000)));
  // pipeline, not pipe: an error of the disk's bytes must end the gzip stream too.
  const gz = createGzip();
  pipeline(tar, gz, () => undefined);
  return { length: undefined, stream: gz, cleanup: disk.cleanup };
}
