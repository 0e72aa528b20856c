/**
 * A streamOptimized VMDK read forward: every grain carries its guest LBA
 * in its marker, so grains are inflated and placed as they come, in any
 * order; grain tables, the grain directory and the footer behind their
 * markers are skipped (the markers say how long they are); the
 * end-of-stream marker ends the image. Inflation runs on the codec pool,
 * a few grains ahead of the writes.
 */
import type { DecodeResult } from '../../core/codec-kernels.js';
import { runCodec } from '../../core/codec-pool.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ForwardImage, ForwardRequest, ForwardSource, GuestWrite } from '../driver.js';
import { dataWrites } from '../forward-writes.js';
import { parseVmdk4Header, sparseMagic, vmdk4Geometry, type SparseGeometry } from './header.js';
import { GRAIN_MARKER_BYTES, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, SECTOR, VMDK4_MAGIC } from './layout.js';

/** Grains being inflated at once, ahead of the writes. */
const INFLATE_AHEAD = 8;

interface Grain {
  readonly offset: number;
  readonly need: number;
  readonly data: Promise<Uint8Array>;
}

/** Inflates one grain (zlib) on the codec pool: its bytes, at least `need` of them. */
async function inflate(input: Uint8Array, grainBytes: number, need: number, at: number, name: string): Promise<Uint8Array> {
  const task = { op: 'decode' as const, codec: 'zlib' as const, unit: grainBytes, input, pieces: [{ at: 0, length: input.length, outAt: 0, from: 0, count: grainBytes }], outLength: grainBytes };
  const r = (await runCodec(task, [input.buffer as ArrayBuffer])) as DecodeResult;
  if (r.failed || !r.out) {
    throw new CorruptImageError(`Compressed grain at offset ${at} does not inflate to at most ${grainBytes} bytes`, { file: name, offset: at, cause: new Error(r.failed?.message ?? 'no output') });
  }
  const n = r.produced[0] ?? 0;
  if (n < need) throw new CorruptImageError(`Compressed grain at offset ${at} inflates to ${n} bytes, fewer than the ${need} it must hold`, { file: name, offset: at });
  return r.out.subarray(0, need);
}

/** Reads the marker at the current position: the next grain, a skipped table, or the end (undefined). */
async function nextGrain(source: ForwardSource, g: SparseGeometry, name: string): Promise<Grain | 'skip' | undefined> {
  const at = source.position;
  const sector = await source.read(SECTOR);
  const v = new DataView(sector.buffer, sector.byteOffset, SECTOR);
  const val = v.getBigUint64(0, true);
  const size = v.getUint32(8, true);
  if (size === 0) {
    const type = v.getUint32(12, true);
    if (type === MARKER_EOS) return undefined;
    if (type !== MARKER_GT && type !== MARKER_GD && type !== MARKER_FOOTER) throw new CorruptImageError(`Unknown VMDK stream marker type ${type} at offset ${at}`, { file: name, offset: at + 12 });
    // A table's sectors follow its marker; a hostile count only costs skipping (bounded by the stream).
    if (val > BigInt(LIMITS.maxOffset / SECTOR)) throw new CorruptImageError(`VMDK stream marker at offset ${at} covers ${val} sectors`, { file: name, offset: at });
    await source.skip(Number(val) * SECTOR);
    return 'skip';
  }
  const maxLen = g.grainBytes * LIMITS.vmdkMaxCompressedGrainFactor;
  if (size > maxLen) throw new CorruptImageError(`Invalid compressed grain marker size ${size} at offset ${at}`, { file: name, offset: at });
  const offset = Number(val) * SECTOR;
  if (val % BigInt(g.grainBytes / SECTOR) !== 0n || offset >= g.capacityBytes) {
    throw new CorruptImageError(`VMDK grain marker at offset ${at} names sector ${val}, not the start of a grain of the disk`, { file: name, offset: at });
  }
  const total = Math.ceil((GRAIN_MARKER_BYTES + size) / SECTOR) * SECTOR;
  const input = new Uint8Array(size);
  const first = Math.min(size, SECTOR - GRAIN_MARKER_BYTES);
  input.set(sector.subarray(GRAIN_MARKER_BYTES, GRAIN_MARKER_BYTES + first), 0);
  if (size > first) input.set((await source.read(total - SECTOR)).subarray(0, size - first), first);
  else if (total > SECTOR) await source.skip(total - SECTOR);
  const need = Math.min(g.grainBytes, g.capacityBytes - offset);
  return { offset, need, data: inflate(input, g.grainBytes, need, at, name) };
}

/**
 * Reads a streamOptimized VMDK from a forward-only source.
 *
 * @throws {CorruptImageError} ECORRUPT for damaged headers, markers or grains
 * @throws {UnsupportedError} EUNSUPPORTED for sparse VMDKs without grain markers (their tables are needed to place grains)
 */
export async function readVmdkForward(source: ForwardSource, request: ForwardRequest): Promise<ForwardImage> {
  const name = request.name;
  const head = await source.read(SECTOR);
  if (sparseMagic(head) !== VMDK4_MAGIC) throw new UnsupportedError(`'${name}': only a streamOptimized VMDK (a single sparse file with grain markers) can be read from a stream`, { file: name });
  const header = parseVmdk4Header(head, name);
  const g = vmdk4Geometry(header, LIMITS.maxOffset, true, name);
  if (!g.compressed || !g.markers) throw new UnsupportedError(`'${name}': only a streamOptimized VMDK (compressed grains with markers) can be read from a stream`, { file: name });
  // The descriptor and any tables written ahead of the grains are not needed: markers place every grain.
  await source.skip(g.overheadBytes - SECTOR);
  return {
    size: g.capacityBytes,
    async *writes(): AsyncIterable<GuestWrite> {
      const ahead: Grain[] = [];
      try {
        for (;;) {
          const next = await nextGrain(source, g, name);
          if (next === 'skip') continue;
          if (next) ahead.push(next);
          if (ahead.length >= INFLATE_AHEAD || (!next && ahead.length > 0)) {
            const grain = ahead.shift() as Grain;
            yield* dataWrites(grain.offset, await grain.data);
          }
          if (!next) {
            while (ahead.length > 0) {
              const grain = ahead.shift() as Grain;
              yield* dataWrites(grain.offset, await grain.data);
            }
            return;
          }
        }
      } finally {
        // Grains inflated ahead of a failure must not reject unobserved.
        for (const grain of ahead) grain.data.catch(() => undefined);
      }
    },
    finalSize: () => g.capacityBytes,
  };
}
